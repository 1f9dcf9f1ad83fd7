"""`graphc dump FILE.py:NAME --input 8x784 --stage ...`: print one stage of the pipeline.

Stages, in pipeline order: tree, traced, passes (the graph after each pass), after:<pass>,
optimized, joint (forward and backward in one graph), backward (the backward graph after the
min-cut partition), kernels (after the kernel passes), plan (buffers
and lifetimes), llvm (as graphc emits it), llvm-opt (after LLVM's O3), asm.
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import sys
from typing import Any, Sequence

STAGES = ("tree", "traced", "passes", "optimized", "joint", "backward", "kernels", "plan", "llvm", "llvm-opt", "asm")


class CliError(Exception):
    """A user mistake on the command line: printed as one line, exit status 2."""


def parse_input(text: str) -> tuple[tuple[int, ...], str]:
    """'8x784' -> ((8, 784), 'float32'); '8:int64' -> ((8,), 'int64'); 'scalar' -> ((), 'float32')."""
    shape_text, _, dtype = text.partition(":")
    dtype = dtype or "float32"
    if dtype not in ("float32", "float64", "int64"):
        raise CliError(f"bad --input {text!r}: dtype must be float32, float64 or int64")
    if shape_text == "scalar":
        return (), dtype
    try:
        shape = tuple(int(d) for d in shape_text.lower().split("x"))
    except ValueError:
        raise CliError(f"bad --input {text!r}: expected sizes joined by 'x', such as 8x784") from None
    if any(d <= 0 for d in shape):
        raise CliError(f"bad --input {text!r}: sizes must be positive")
    return shape, dtype


def parse_arg(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise CliError(f"bad --arg {text!r}: expected name=value")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def load_target(spec: str, kwargs: dict[str, Any]) -> Any:
    """Import FILE.py and call NAME(**kwargs): a Module class or a factory returning a Module."""
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name:
        raise CliError(f"bad target {spec!r}: expected FILE.py:NAME")
    if not os.path.isfile(path):
        raise CliError(f"no such file: {path}")
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:  # so the model file can import its neighbours
        sys.path.insert(0, folder)
    module_spec = importlib.util.spec_from_file_location(f"graphc_dump_{os.path.basename(path)[:-3]}", path)
    if module_spec is None or module_spec.loader is None:
        raise CliError(f"cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except SystemExit as e:  # the model file's own top-level code exited: say so, do not exit silently
        raise CliError(f"importing {path} called sys.exit({e.code!r}); guard its script part with "
                       "`if __name__ == \"__main__\":`") from None
    except Exception as e:
        raise CliError(f"importing {path} failed: {type(e).__name__}: {e}") from None
    if not hasattr(module, name):
        raise CliError(f"{path} has no attribute {name!r}")
    try:
        model = getattr(module, name)(**kwargs)
    except Exception as e:
        raise CliError(f"building {name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) failed: "
                       f"{type(e).__name__}: {e}") from None
    import graphc
    if not isinstance(model, graphc.nn.Module):
        raise CliError(f"{name}() returned {type(model).__name__} {model!r:.40}, not a graphc.nn.Module")
    return model


class _Reached(Exception):
    """Raised by the dump's observer at the stage it prints: the run needs go no further."""

    def __init__(self, stage: Any):
        super().__init__(stage.name)
        self.stage = stage


def dump(model: Any, inputs: Sequence[tuple[tuple[int, ...], str]], stage: str) -> str:
    """The text of one stage for `model`, traced on inputs of the given shapes, made by the
    same staged driver that graphc.compile runs."""
    import graphc
    from graphc.compiled import build_differentiable, build_inference, trainable_inputs
    from graphc.stages import Driver
    from graphc.tree import ModuleTree
    from runtime import jit

    if stage == "tree":
        return str(ModuleTree.of(model))
    program = graphc.trace(model, *_examples(inputs))
    wanted = {"backward": "partitioned", "plan": "planned", "passes": "kernels",
              "llvm-opt": "llvm", "asm": "llvm"}.get(stage, stage)
    shown: list[str] = []

    def observe(s: Any) -> None:
        if stage == "passes" and s.name == "traced":
            shown.append(f"== traced ==\n{s.text()}")
        elif stage == "passes" and s.name.startswith("after:"):
            shown.append(f"== after {s.name[len('after:'):]} ({s.seconds * 1e3:.2f} ms) ==\n{s.text()}")
        if s.name == wanted:
            raise _Reached(s)

    try:
        if stage in ("backward", "joint"):
            params = [n for n, p in program.params.items() if p.requires_grad]
            build_differentiable(program, trainable_inputs(program, params), Driver(observe), "dump")
        else:
            build_inference(program, Driver(observe), "dump")
    except _Reached as reached:
        text = reached.stage.text()
        if stage == "passes":
            return "\n".join(shown)
        return jit.optimized_ir(text) if stage == "llvm-opt" else jit.assembly(text) if stage == "asm" else text
    raise CliError(f"the pipeline made no stage {stage!r}")


def _known_pass(stage: str) -> bool:
    from graphc.passes.pipeline import PASSES
    return stage.startswith("after:") and stage[len("after:"):] in PASSES


def _examples(inputs):
    """Shapes and dtypes only: tracing allocates nothing, however large the input."""
    import graphc
    return [graphc.InputSpec(shape, dtype) for shape, dtype in inputs]


def cache_command(action: str) -> int:
    """`graphc cache info` prints the compile cache's facts one per line; `clear` empties it."""
    from runtime import cache
    if action == "info":
        print("\n".join(f"{name}: {value}" for name, value in cache.cache_info().items()))
    else:
        removed = cache.cache_clear()
        print(f"removed {removed} {'entry' if removed == 1 else 'entries'} from {cache.cache_dir()}")
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise CliError(message)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(prog="graphc", description="graphc: inspect every stage of the compiler")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="print one stage for a model", description=__doc__.splitlines()[0])
    d.add_argument("target", help="FILE.py:NAME, a Module class or factory taking keyword arguments")
    d.add_argument("--input", action="append", default=[], help="input shape such as 8x784 (':int64' for indices)")
    d.add_argument("--stage", default="traced", help=f"one of: {', '.join(STAGES)}")
    d.add_argument("--arg", action="append", default=[], help="name=value passed to NAME")
    d.add_argument("--eval", action="store_true", help="put the model in eval mode first")
    c = sub.add_parser("cache", help="show or clear the on-disk compile cache")
    c.add_argument("action", choices=("info", "clear"))
    try:
        args = parser.parse_args(argv)
        if args.command == "cache":
            return cache_command(args.action)
        if args.stage not in STAGES and not _known_pass(args.stage):
            raise CliError(f"unknown stage {args.stage!r}; choose one of: {', '.join(STAGES)}, after:<pass>")
        inputs = [parse_input(text) for text in args.input]
        model = load_target(args.target, dict(parse_arg(a) for a in args.arg))
        if args.eval:
            model.eval()
        if not inputs and args.stage != "tree":
            raise CliError("give the input shapes with --input, such as --input 8x784")
        text = dump(model, inputs, args.stage)
    except CliError as e:
        print(f"graphc: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a model that fails to trace or compile: one line, not a traceback
        print(f"graphc: error: {type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `graphc dump ... | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
