"""The module tree as data: who owns which parameter and buffer, by qualified name and type."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .ir.node import type_text


@dataclass(frozen=True)
class Slot:
    """A parameter or buffer owned by one module."""

    name: str          # qualified name, as in state_dict
    kind: str          # "param" | "buffer"
    shape: tuple[int, ...]
    dtype: str
    shared_with: str = ""  # first qualified name when this tensor is also owned elsewhere

    def __str__(self) -> str:
        shared = f"  (shared with {self.shared_with})" if self.shared_with else ""
        return f"{self.kind} {self.name.rsplit('.', 1)[-1]}: {type_text(self.shape, self.dtype)}{shared}"


@dataclass(frozen=True)
class ModuleTree:
    path: str                  # qualified name, '' at the root
    type_name: str
    slots: tuple[Slot, ...]
    children: tuple["ModuleTree", ...]
    training: bool = True

    @staticmethod
    def of(module: Any, path: str = "", _owners: dict[int, str] | None = None) -> "ModuleTree":
        owners = {} if _owners is None else _owners
        slots = []
        for kind, items in (("param", module._parameters.items()), ("buffer", module._buffers.items())):
            for name, t in items:
                if t is None:
                    continue
                qual = f"{path}.{name}" if path else name
                first = owners.setdefault(id(t), qual)
                slots.append(Slot(qual, kind, tuple(t.shape), str(t.dtype), first if first != qual else ""))
        children = tuple(ModuleTree.of(child, f"{path}.{name}" if path else name, owners)
                         for name, child in module._modules.items() if child is not None)
        return ModuleTree(path, type(module).__name__, tuple(slots), children, bool(module.training))

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, path: str) -> "ModuleTree":
        for node in self.walk():
            if node.path == path:
                return node
        raise KeyError(f"no module at {path!r}")

    def format(self, indent: int = 0) -> str:
        name = self.path.rsplit(".", 1)[-1] if self.path else "<root>"
        lines = [f"{'  ' * indent}{name}: {self.type_name}" + ("" if self.training else "  (eval)")]
        lines += [f"{'  ' * (indent + 1)}{slot}" for slot in self.slots]
        lines += [child.format(indent + 1) for child in self.children]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()
