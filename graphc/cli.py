"""`graphc dump FILE.py:NAME --input 8x784 --stage ...`: print one stage of the pipeline.

Stages, in pipeline order: tree, traced, passes (the graph after each pass), after:<pass>,
optimized, joint (forward and backward in one graph), backward (the backward graph after the
min-cut partition), kernels (after the kernel passes), plan (buffers
and lifetimes), llvm (as graphc emits it), llvm-opt (after LLVM's O3), asm; `all` writes every
one of them to a numbered file in `--out DIR`.

`--format json|dot` prints a graph stage (traced, after:<pass>, optimized, joint, backward,
kernels) as data (graphc/ir/export.py has the schema; kernels gives the list of kernel functions)
or as Graphviz DOT, modules as clusters; `--out FILE.svg` renders the DOT with Graphviz's `dot`.
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from typing import Any, Sequence

STAGES = ("tree", "traced", "passes", "optimized", "prepared", "joint", "backward", "kernels", "plan", "llvm", "llvm-opt", "asm",
          "all")
GRAPH_STAGES = ("traced", "optimized", "joint", "backward", "kernels")  # and after:<pass>: json and dot apply
FORMATS = ("text", "json", "dot")
EXTENSIONS = {"text": "txt", "json": "json", "dot": "dot"}  # of the files --stage all writes


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
    """Raised by the dump's observer at the last stage it needs: the run need go no further."""


def dump(model: Any, inputs: Sequence[tuple[tuple[int, ...], str]], stage: str, fmt: str = "text",
         train_step: tuple[str, str] | None = None) -> str:
    """The text of one stage for `model`, traced on inputs of the given shapes, made by the
    same staged driver that graphc.compile runs; a graph stage as JSON or DOT for `fmt`.
    `train_step` = (loss module name, optimizer name): `joint` is then the whole compiled train
    step (the last input is the target), with the optimizer's update."""
    import graphc
    from graphc.tree import ModuleTree

    if stage == "tree":
        return str(ModuleTree.of(model))
    if train_step is not None:
        if stage != "joint":
            raise CliError("--loss and --optim go with --stage joint")
        return render(stage, _train_step_joint(model, inputs, *train_step), fmt, ModuleTree.of(model))
    program = graphc.trace(model, *_examples(inputs))
    wanted = {"backward": "partitioned", "plan": "planned", "passes": "kernels",
              "llvm-opt": "llvm", "asm": "llvm"}.get(stage, stage)
    seen = _observe(program, wanted, differentiable=stage in ("backward", "joint"))
    return _passes_text(seen) if stage == "passes" else render(stage, seen[-1], fmt, program.tree)


def dump_all(model: Any, inputs: Sequence[tuple[tuple[int, ...], str]], fmt: str = "text",
             train_step: tuple[str, str] | None = None) -> list[tuple[str, str]]:
    """Every stage as (file name, text), numbered in pipeline order: the forward's stages from
    the inference build, joint and backward from the differentiable build, after prepared; with
    `train_step` (loss, optimizer; the last input is the target) the whole train step's graph too."""
    import graphc
    from graphc.tree import ModuleTree
    from runtime import jit

    step = _train_step_joint(model, inputs, *train_step) if train_step is not None else None
    program = graphc.trace(model, *_examples(inputs[:-1] if train_step is not None else inputs))
    forward = _observe(program, "llvm", differentiable=False)
    gradients = [s for s in _observe(program, "partitioned", differentiable=True) if s.name in ("joint", "partitioned")]
    after = next(k for k, s in enumerate(forward) if s.name == "prepared") + 1
    files = [("tree.txt", str(ModuleTree.of(model)))]
    for s in forward[:after] + gradients + forward[after:]:
        stage = {"partitioned": "backward", "planned": "plan"}.get(s.name, s.name)
        if stage == "llvm":
            llvm = s.text()
            files += [("llvm.ll", llvm), ("llvm-opt.ll", jit.optimized_ir(llvm)), ("asm.s", jit.assembly(llvm))]
        else:
            shown = fmt if _graph_stage(stage) else "text"
            files.append((f"{stage.replace(':', '-')}.{EXTENSIONS[shown]}", render(stage, s, shown, program.tree)))
        if s.name == "partitioned" and step is not None:  # the train step: forward, loss, backward, update
            files.append((f"train-step.{EXTENSIONS[fmt]}", render("joint", step, fmt, program.tree)))
    return [(f"{k:02d}-{name}", text) for k, (name, text) in enumerate(files)]


def _train_step_joint(model: Any, inputs: Sequence[tuple[tuple[int, ...], str]], loss: str, optim: str) -> Any:
    """The differentiated stage of compile_train_step(model, nn.<loss>(), optim.<optim>(...))."""
    import graphc
    from graphc.stages import Driver
    from graphc.train_step import TrainStep

    loss_class, optim_class = getattr(graphc.nn, loss, None), getattr(graphc.optim, optim, None)
    if not isinstance(loss_class, type) or not loss.endswith("Loss"):
        raise CliError(f"unknown loss {loss!r}; give a graphc.nn loss class such as CrossEntropyLoss")
    if not isinstance(optim_class, type) or not issubclass(optim_class, graphc.optim.Optimizer):
        raise CliError(f"unknown optimizer {optim!r}; give a graphc.optim class such as SGD, Adam or Adadelta")
    if len(inputs) < 2:
        raise CliError("a train step takes the model's inputs and then the target: give --input twice or more")
    step = TrainStep(model, loss_class(), optim_class(model.parameters()))
    seen = []

    def observe(s: Any) -> None:
        if s.name == "differentiated":
            seen.append(s)
            raise _Reached(s.name)

    try:
        step._build(tuple(_examples(inputs)), Driver(observe))
    except _Reached:
        return seen[-1]
    raise CliError("the train step made no joint graph")


def _observe(program: Any, until: str, differentiable: bool) -> list[Any]:
    """The stages the driver makes for `program`, in order, through `until`, where the observer
    stops the run; `differentiable` builds the forward and backward as a trained model does."""
    from graphc.compiled import build_differentiable, build_inference, trainable_inputs
    from graphc.stages import Driver

    seen = []

    def observe(s: Any) -> None:
        seen.append(s)
        if s.name == until:
            raise _Reached(s.name)

    try:
        if differentiable:
            params = [n for n, p in program.params.items() if p.requires_grad]
            build_differentiable(program, trainable_inputs(program, params), Driver(observe), "dump")
        else:
            build_inference(program, Driver(observe), "dump")
    except _Reached:
        return seen
    raise CliError(f"the pipeline made no stage {until!r}")


def _passes_text(stages: Sequence[Any]) -> str:
    """The traced graph, then the graph after each pass; a pass that changed nothing says so."""
    shown, previous = [], None
    for s in stages:
        if s.name != "traced" and not s.name.startswith("after:"):
            continue
        text = s.text()
        if s.name == "traced":
            header = "== traced =="
        else:
            unchanged = " (unchanged)" if text == previous else ""
            header = f"== after {s.name[len('after:'):]} ({s.seconds * 1e3:.2f} ms){unchanged} =="
        shown.append(f"{header}\n{text}")
        previous = text
    return "\n".join(shown)


def render(stage: str, s: Any, fmt: str = "text", tree: Any = None) -> str:
    """One Stage as text (the graph printer's, the plan's, LLVM's), or a graph stage as JSON or
    DOT (clusters labelled with the module tree's types); the JSON of a kernel program (the
    kernels stage, after a program pass) is the list of its kernel functions (`kernels_view`)."""
    from graphc.ir import export
    from runtime import jit

    if fmt == "text":
        text = s.text()
        return jit.optimized_ir(text) if stage == "llvm-opt" else jit.assembly(text) if stage == "asm" else text
    graph = getattr(s.value, "graph", s.value)  # a JointGraph or BackwardGraph holds its Graph
    if fmt == "dot":
        types = {m.path: m.type_name for m in tree.walk()} if tree is not None else None
        return export.to_dot(graph, f"{s.label} {stage}", types)
    from graphc.program import Program
    return json.dumps(kernels_view(s.value) if isinstance(s.value, Program) else export.to_json(graph), indent=1)


def kernels_view(program: Any) -> list[dict[str, Any]]:
    """One entry per kernel function of the lowered module, in schedule order: its symbol, its
    template, the ids of the nodes it computes, the module paths they came from, what it writes."""
    return [{"name": k.name, "template": k.template, "nodes": list(k.nodes), "module_paths": list(k.module_paths),
             "writes": list(k.outputs), "reads": list(k.inputs)} for k in program.kernels]


def _graph_stage(stage: str) -> bool:
    return stage in GRAPH_STAGES or stage.startswith("after:")


def _known_pass(stage: str) -> bool:
    from graphc.passes.pipeline import PASSES
    from graphc.program import PROGRAM_PASSES
    names = {*PASSES, *(p.__name__ for p in PROGRAM_PASSES)}
    return stage.startswith("after:") and stage[len("after:"):] in names


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
    d.add_argument("--format", default="text", choices=FORMATS, help="json or dot for graph stages")
    d.add_argument("--loss", help="with --stage joint and --optim: the whole train step, e.g. CrossEntropyLoss")
    d.add_argument("--optim", help="with --stage joint and --loss: the optimizer, e.g. SGD, Adam, AdamW, RMSprop, Adadelta or Adagrad")
    d.add_argument("--out", help="write to this file (FILE.svg: rendered by Graphviz), or with --stage all this folder")
    c = sub.add_parser("cache", help="show or clear the on-disk compile cache")
    c.add_argument("action", choices=("info", "clear"))
    try:
        args = parser.parse_args(argv)
        if args.command == "cache":
            return cache_command(args.action)
        if args.stage not in STAGES and not _known_pass(args.stage):
            raise CliError(f"unknown stage {args.stage!r}; choose one of: {', '.join(STAGES)}, after:<pass>")
        _check_output(args.stage, args.format, args.out)
        inputs = [parse_input(text) for text in args.input]
        model = load_target(args.target, dict(parse_arg(a) for a in args.arg))
        if args.eval:
            model.eval()
        if not inputs and args.stage != "tree":
            raise CliError("give the input shapes with --input, such as --input 8x784")
        if (args.loss is None) != (args.optim is None):
            raise CliError("--loss and --optim go together")
        train_step = (args.loss, args.optim) if args.loss is not None else None
        if args.stage == "all":
            text = "\n".join(_write_all(args.out, dump_all(model, inputs, args.format, train_step)))
        elif args.out:
            text = _write(args.out, dump(model, inputs, args.stage, args.format, train_step))
        else:
            text = dump(model, inputs, args.stage, args.format, train_step)
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


def _check_output(stage: str, fmt: str, out: str | None) -> None:
    """Refuse before tracing what cannot be written: a format the stage has not, an SVG without
    DOT or without Graphviz, `all` without a folder."""
    if fmt != "text" and stage != "all" and not _graph_stage(stage):
        raise CliError(f"--format {fmt} is for graph stages ({', '.join(GRAPH_STAGES)}, after:<pass>); "
                       f"{stage} is text only")
    if stage == "all" and not out:
        raise CliError("--stage all writes one file per stage: give the folder with --out DIR")
    if stage != "all" and out and out.endswith(".svg"):
        if fmt != "dot":
            raise CliError(f"--out {out} renders a graph drawing: add --format dot")
        if shutil.which("dot") is None:
            raise CliError(f"--out {out} needs Graphviz's dot program, which is not installed; "
                           "--out FILE.dot writes the DOT text")


def _write(path: str, text: str) -> str:
    """Write `text` to `path` (DOT rendered to SVG by Graphviz for FILE.svg); returns the path."""
    try:
        if path.endswith(".svg"):
            done = subprocess.run([shutil.which("dot") or "dot", "-Tsvg", "-o", path], input=text, text=True,
                                  capture_output=True)
            if done.returncode:
                raise CliError(f"dot could not render {path}: {' '.join(done.stderr.split())}")
        else:
            with open(path, "w") as f:
                f.write(text if text.endswith("\n") else text + "\n")
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def _write_all(folder: str, files: Sequence[tuple[str, str]]) -> list[str]:
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise CliError(f"cannot make the folder {folder}: {e.strerror or e}") from None
    return [_write(os.path.join(folder, name), text) for name, text in files]


if __name__ == "__main__":
    sys.exit(main())
