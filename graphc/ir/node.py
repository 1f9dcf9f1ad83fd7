"""Frozen IR records: one Node per value of the computation graph."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SHORT_DTYPE = {"float32": "f32", "float64": "f64", "int64": "i64", "bool": "b8"}


def type_text(shape: tuple[int, ...], dtype: str) -> str:
    """`f32[128,512]`: how types print everywhere (graphs, trees, dumps)."""
    return f"{SHORT_DTYPE.get(dtype, dtype)}[{','.join(map(str, shape))}]"


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant array stored by value, so nodes holding it stay hashable."""

    data: bytes
    shape: tuple[int, ...]
    dtype: str

    @staticmethod
    def of(value: Any, dtype: str | None = None) -> "Literal":
        arr = np.array(value, dtype=dtype, order="C")
        return Literal(arr.tobytes(), tuple(arr.shape), str(arr.dtype))

    def array(self) -> np.ndarray:
        return np.frombuffer(self.data, dtype=self.dtype).reshape(self.shape)

    def __repr__(self) -> str:
        arr = self.array()
        if arr.size <= 4:
            return np.array2string(arr, separator=",").replace("\n", "")
        return f"<{SHORT_DTYPE.get(self.dtype, self.dtype)}{list(self.shape)} literal>"


def provenance(module_path: str, module_type: str, source: str) -> str:
    """`in module 'fc1' (Linear) at net.py:12`: how errors name where a value came from."""
    text = f"in module '{module_path or '<root>'}' ({module_type})"
    return f"{text} at {source}" if source else text


@dataclass(frozen=True, slots=True)
class Role:
    """What a graph input is, which is how runners bind it: never by its printed name.

    kind: user (key: position k among the call's tensors), param and buffer (key: qualified
    name in the module tree), state and hyper (key: (parameter name, state or hyperparameter
    name)), seed (key: output index k, the incoming gradient of output k), saved (key: id of
    the forward node whose value is passed in).
    """

    kind: str
    key: Any

    def __str__(self) -> str:
        key = ", ".join(map(str, self.key)) if isinstance(self.key, tuple) else self.key
        return f"{self.kind} {'%' if self.kind == 'saved' else ''}{key}"


@dataclass(frozen=True, slots=True)
class Node:
    """One op application. `inputs` are ids of earlier nodes; `attrs` is a sorted tuple of pairs."""

    id: int
    op: str
    inputs: tuple[int, ...]
    attrs: tuple[tuple[str, Any], ...]
    shape: tuple[int, ...]
    dtype: str
    module_path: str = ""
    module_type: str = ""
    source: str = ""

    def attr(self, name: str, default: Any = None) -> Any:
        for key, value in self.attrs:
            if key == name:
                return value
        return default

    def where(self) -> str:
        """The module path, type and source line that made this node, as errors print them."""
        return provenance(self.module_path, self.module_type, self.source)

    @property
    def role(self) -> Role:
        """The role of an input node (see Role)."""
        return self.attr("role")

    @property
    def attr_dict(self) -> dict[str, Any]:
        return dict(self.attrs)

    @property
    def type_str(self) -> str:
        return type_text(self.shape, self.dtype)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __str__(self) -> str:
        if self.op == "input":
            role = self.role
            rhs = f"input {self.attr('name')}  ({role.kind if role.key == self.attr('name') else role})"
        elif self.op == "constant":
            rhs = f"constant {self.attr('value')!r}"
        else:
            args = ", ".join(f"%{i}" for i in self.inputs)
            shown = ", ".join(f"{k}={v!r}" for k, v in self.attrs)
            rhs = f"{self.op} {args}" + (f"  {{{shown}}}" if shown else "")
        text = f"%{self.id} : {self.type_str} = {rhs}"
        where = []
        if self.module_path or self.module_type:
            where.append(f"{self.module_path or '<root>'} ({self.module_type})" if self.module_type else self.module_path)
        if self.source:
            where.append(self.source)
        if where and self.op != "input":
            text = f"{text:<60}  # {'  '.join(where)}"
        return text


def freeze_attrs(attrs: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Sorted, hashable attribute pairs (lists become tuples)."""
    def freeze(v: Any) -> Any:
        if isinstance(v, list):
            return tuple(freeze(x) for x in v)
        if isinstance(v, np.generic):
            return v.item()
        return v
    return tuple(sorted((k, freeze(v)) for k, v in attrs.items()))
