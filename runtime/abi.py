"""The lowered artifact: all the runtime needs to load and call one compiled graph.

graphc's driver (graphc/stages.py) makes an Artifact from a graph; the runtime loads its object
code and calls its entry point, and imports nothing of the compiler, so it could run a saved
artifact without the model's code. The entry point's ABI is described in graphc/lower/module.py.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

# the symbol kernels call to split work across the runtime's thread pool
PARALLEL_ENTRY = "graphc_parallel"

# errors a failed check may raise, by the name the artifact carries
CHECK_ERRORS: dict[str, type[Exception]] = {"IndexError": IndexError, "ValueError": ValueError,
                                            "RuntimeError": RuntimeError}

ABI_VERSION = 2  # i32 entry(ptr args, ptr workspace, ptr status)


@dataclass(frozen=True)
class BufferSpec:
    """One argument buffer of the entry point: a C-contiguous array of this shape and dtype."""

    name: str  # a label for messages
    shape: tuple[int, ...]
    dtype: np.dtype

    def describe(self) -> str:
        return f"{self.dtype.name}{list(self.shape)}"


@dataclass(frozen=True)
class CheckSpec:
    """What the runtime raises when check k fails: `error(f"{where}: {message}")`, with the
    offending value substituted for `{value}` in the message."""

    error: str    # a key of CHECK_ERRORS
    message: str
    where: str    # "in module 'fc1' (Linear) at net.py:12"


@dataclass(frozen=True)
class Artifact:
    """A graph lowered to LLVM IR, with its entry point's calling convention."""

    name: str
    ir_text: str
    entry: str
    workspace_bytes: int
    inputs: tuple[BufferSpec, ...]
    outputs: tuple[BufferSpec, ...]
    updated: frozenset[int]           # positions of the inputs the graph writes (its updates)
    checks: tuple[CheckSpec, ...] = ()  # by status code - 1
    source: str | None = None  # what the code is made from, for the cache (None: the IR text)

    def signature(self) -> str:
        """The calling convention as text, which the compile cache matches exactly, e.g.
        `abi=2 entry=main in=float32[4,16];float32[3,16] out=float32[4,3] workspace=256 checks=0`."""
        def buffers(specs: tuple[BufferSpec, ...]) -> str:
            return ";".join(f"{s.dtype.name}[{','.join(map(str, s.shape))}]" for s in specs)
        return (f"abi={ABI_VERSION} entry={self.entry} in={buffers(self.inputs)} out={buffers(self.outputs)} "
                f"workspace={self.workspace_bytes} checks={len(self.checks)}")


def _fields(artifact: Artifact) -> dict:
    def buffers(specs: tuple[BufferSpec, ...]) -> list:
        return [[s.name, list(s.shape), s.dtype.str] for s in specs]
    return {"name": artifact.name, "entry": artifact.entry, "workspace_bytes": artifact.workspace_bytes,
            "inputs": buffers(artifact.inputs), "outputs": buffers(artifact.outputs),
            "updated": sorted(artifact.updated), "source": artifact.source,
            "checks": [[c.error, c.message, c.where] for c in artifact.checks]}


def artifact_record(artifact: Artifact) -> str:
    """The artifact without its IR text as JSON: what a build record (build_record) holds of
    each graph it compiled, beside the object code the cache keeps under `artifact.source`."""
    return json.dumps(_fields(artifact), sort_keys=True)


def artifact_from_record(text: str) -> Artifact:
    """The Artifact `artifact_record` wrote (empty IR text); ValueError unless every field has
    the type and range it must have."""
    return _from_fields(json.loads(text))


def build_record(compiled: dict[str, Artifact], bindings: dict) -> str:
    """A whole build as JSON: per graph it compiled (by label) its artifact without IR text, and
    the plain data (`bindings`) that says how its inputs and outputs meet the traced program.
    The compile cache keeps it under the traced graph's digest, so a later process with the
    same model skips every stage but tracing and loading (graphc/stages.py)."""
    return json.dumps({"compiled": {label: _fields(a) for label, a in compiled.items()}, "bindings": bindings},
                      sort_keys=True)


def build_from_record(text: str) -> tuple[dict[str, Artifact], dict]:
    """The artifacts and bindings `build_record` wrote; ValueError unless every artifact field is
    sound (the bindings are checked by whoever made them)."""
    record = json.loads(text)
    compiled, bindings = record["compiled"], record["bindings"]
    if not isinstance(compiled, dict) or not compiled or not isinstance(bindings, dict):
        raise ValueError("a build record holds compiled graphs by label and its bindings")
    return {label: _from_fields(fields) for label, fields in compiled.items()}, bindings


def _from_fields(record: dict) -> Artifact:
    if not isinstance(record, dict):
        raise ValueError("an artifact record is an object")

    def text_field(value: object) -> str:
        if not isinstance(value, str):
            raise ValueError("an artifact record's names and messages are strings")
        return value

    def count(value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError("an artifact record's sizes are non-negative integers")
        return value

    def buffers(items: object) -> tuple[BufferSpec, ...]:
        if not isinstance(items, list):
            raise ValueError("an artifact record's buffers are a list")
        specs = []
        for item in items:
            name, shape, dtype = item
            if not isinstance(shape, list):
                raise ValueError("a buffer's shape is a list")
            specs.append(BufferSpec(text_field(name), tuple(map(count, shape)), np.dtype(text_field(dtype))))
        return tuple(specs)

    inputs = buffers(record["inputs"])
    updated = frozenset(map(count, record["updated"]))
    if not updated <= set(range(len(inputs))):
        raise ValueError("an artifact record updates an input it does not have")
    checks = []
    for item in record["checks"]:
        error, message, where = map(text_field, item)
        if error not in CHECK_ERRORS:
            raise ValueError(f"an artifact record names an unknown error {error!r}")
        checks.append(CheckSpec(error, message, where))
    return Artifact(text_field(record["name"]), "", text_field(record["entry"]), count(record["workspace_bytes"]),
                    inputs, buffers(record["outputs"]), updated, tuple(checks), text_field(record["source"]))
