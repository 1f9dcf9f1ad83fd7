"""The README's table of what graphc supports, generated from the op table and graphc.nn.

`python -m graphc.support` prints it; `python -m graphc.support --write README.md` replaces the
text between the markers in the README; a test fails when the README is out of date.
"""
from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

BEGIN, END = "<!-- support:begin (python -m graphc.support --write README.md) -->", "<!-- support:end -->"


def _public(module, keep) -> list[str]:
    return sorted(name for name, value in vars(module).items() if not name.startswith("_") and keep(name, value))


def _names(names: list[str], code: bool = True) -> str:
    return ", ".join(f"`{n}`" if code else n for n in names) or "none"


def table() -> str:
    """Markdown: modules, functional forms, tensor functions, optimizers, and the op table with the
    lowering each op has."""
    import graphc
    import graphc.nn as nn
    import graphc.nn.functional as functional
    import graphc.nn.init as init
    import graphc.optim as optim
    from graphc.lower.emitters import ALIASES, CHECKS, EMITTERS
    from graphc.ops import OPS

    def is_module(name, value):
        return inspect.isclass(value) and issubclass(value, nn.Module) and value is not nn.Module

    def is_function(module):
        return lambda name, value: inspect.isfunction(value) and value.__module__.startswith(module.__name__.split(".")[0])

    losses = [n for n in _public(nn, is_module) if n.endswith("Loss")]
    modules = [n for n in _public(nn, is_module) if n not in losses]
    optimizers = _public(optim, lambda n, v: inspect.isclass(v) and issubclass(v, optim.Optimizer)
                         and v is not optim.Optimizer)
    schedulers = []
    if hasattr(optim, "lr_scheduler"):
        schedulers = _public(optim.lr_scheduler, lambda n, v: inspect.isclass(v) and v.__module__ ==
                             optim.lr_scheduler.__name__ and not n.startswith("LRScheduler"))
    rows = [
        ("`graphc.nn` modules", _names(modules)),
        ("`graphc.nn` losses", _names(losses)),
        ("`graphc.nn.functional`", _names(_public(functional, is_function(functional)))),
        ("`graphc.nn.init`", _names(_public(init, lambda n, v: inspect.isfunction(v) and n.endswith("_")
                                              or n == "calculate_gain"))),
        ("`graphc` functions", _names(_public(graphc, is_function(graphc)))),
        ("`graphc.optim`", _names(optimizers)),
        ("`graphc.optim.lr_scheduler`", _names(schedulers)),
    ]
    lines = ["| area | supported |", "|---|---|", *(f"| {area} | {names} |" for area, names in rows), "",
             "| op | kind | lowering |", "|---|---|---|"]
    for name in sorted(OPS):
        lowering = ("alias (no code)" if name in ALIASES else "check kernel" if name in CHECKS else
                    "native kernel" if name in EMITTERS else "none")
        lines.append(f"| `{name}` | {OPS[name].kind} | {lowering} |")
    return "\n".join(lines)


def section() -> str:
    return f"{BEGIN}\n{table()}\n{END}"


def replace_section(text: str) -> str:
    """`text` with the part between the markers (markers included) replaced by today's table."""
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + section() + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graphc.support", description=__doc__.splitlines()[0])
    parser.add_argument("--write", metavar="README", help="replace the table between the markers in this file")
    args = parser.parse_args(argv)
    if args.write:
        path = Path(args.write)
        path.write_text(replace_section(path.read_text()))
    else:
        sys.stdout.write(section() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
