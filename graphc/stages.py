"""The one staged driver: every compile path (graphc.compile, compile_train_step, graphc dump,
GRAPHC_DEBUG) runs its stages through a Driver, in pipeline order:

    traced -> after:<pass> ... -> optimized -> prepared | joint -> partitioned -> kernels -> planned -> llvm -> native

(a train step's graph already holds forward, backward and update: it is `differentiated` instead
of joint and partitioned, and runs as one native call; an inference graph is `prepared`: what it
computes from parameters alone is split off into a prepare graph, see prepare.py).

Each stage is a frozen, printable `Stage` handed to the driver's observer as it is made: the
default observer logs stages as GRAPHC_DEBUG asks; `graphc dump` observes the same run and stops
at the stage it prints. The driver hands the runtime a lowered `Artifact` (runtime/abi.py), so
data flows one way: graphc -> runtime.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Generic, Sequence, TypeVar

import numpy as np

from runtime.abi import Artifact, BufferSpec, build_from_record, build_record
from runtime.cache import enabled as cache_enabled, load_all_cached, load_cached, load_record, store_record
from runtime.executor import CompiledGraph

from .autodiff import BackwardGraph
from .debug import debug_level, log
from .config import num_threads
from .ir import Graph
from .ir.digest import graph_digest
from .lower import lower
from .lower.module import check_specs
from .program import Program, build_program, format_plan, planned, workspace_bytes
from .partition import JointGraph, joint_graph, partition
from .prepare import Hoisted, hoist
from .passes import KERNEL_PIPELINE, PIPELINE, optimize

STAGES = ("traced", "optimized", "prepared", "joint", "partitioned", "differentiated", "kernels", "planned", "llvm", "native")
_LEVEL = {"traced": 2, "optimized": 2, "prepared": 2, "joint": 3, "partitioned": 2, "differentiated": 2, "kernels": 3,
          "planned": 3, "llvm": 4}


@dataclass(frozen=True)
class Stage:
    """One stage of one graph: `label` says which graph (forward, backward, train step)."""

    name: str  # one of STAGES, or "after:<pass>"
    label: str
    value: Any  # Graph, BackwardGraph, Program (kernels, planned), LLVM IR text, CompiledGraph
    seconds: float

    def text(self) -> str:
        value = self.value
        if self.name == "planned":
            return format_plan(value)
        return str(value.graph if isinstance(value, (BackwardGraph, JointGraph)) else value)

    def __str__(self) -> str:
        return f"{self.label} {self.name} ({self.seconds * 1e3:.2f} ms):\n{self.text()}"


def log_stage(stage: Stage) -> None:
    """The default observer: GRAPHC_DEBUG=1 timings, 2 graphs, 3 after each pass and kernels,
    4 LLVM IR, 5 assembly."""
    level = debug_level()
    if not level:
        return
    if stage.name == "native":
        log(1, f"compiled {stage.label} in {stage.seconds * 1e3:.1f} ms")
        if level >= 5:
            log(5, f"{stage.label} assembly:\n{stage.value.assembly()}")
        return
    wanted = 3 if stage.name.startswith("after:") else _LEVEL.get(stage.name, 2)
    if level >= wanted:
        log(wanted, str(stage))
    else:
        log(1, f"{stage.label} {stage.name} in {stage.seconds * 1e3:.2f} ms")


Bound = TypeVar("Bound")


@dataclass(frozen=True)
class Built(Generic[Bound]):
    """What a build made of one traced program: its compiled graphs by label, and how they meet
    the program (which input feeds which, by position and role), as plain JSON data
    (`bindings`) so a build record can keep it; `bound` is that data checked and typed by the
    builder's `bind`."""

    compiled: dict[str, CompiledGraph]
    bindings: dict
    bound: Any = None


class Driver:
    """Runs stages and reports each one to `observe`."""

    def __init__(self, observe: Callable[[Stage], None] = log_stage):
        self.observe = observe

    def build(self, traced: Graph, what: tuple | None, context: str, make: Callable[[], Built],
              bind: Callable[[dict], Bound]) -> Built[Bound]:
        """`make()`'s build of `traced`, or the one the disk cache recorded for it.

        A build record is keyed on the traced graph's digest (with the compiler's sources, the
        thread count and `what`: the kind of build and whatever else besides the graph decides
        it, such as the optimizer's class), so a hit skips the graph passes, autodiff, the
        kernel passes and lowering: it only loads object code. It is used when nobody watches
        those stages (the default observer below GRAPHC_DEBUG=2), and `what` is not None (None:
        what decides the build cannot be named, so it is not recorded). `bind` turns the recorded
        bindings back into what the runner needs, raising ValueError, TypeError, KeyError or
        IndexError when they do not fit the traced program: then, as when any object entry it
        names is gone, the record is a miss and the build runs afresh."""
        use_record = what is not None and self.observe is log_stage and debug_level() < 2 and cache_enabled()
        source = graph_digest(traced, "build", *what, num_threads()) if use_record else None
        if source is not None:
            start = time.perf_counter()
            found = self._recorded(source, context, bind)
            if found is not None:
                for label, compiled in found.compiled.items():
                    self._emit("native", label, compiled, start)
                return found
        built = make()
        if source is not None and all(c.artifact.source for c in built.compiled.values()):
            store_record(source, "build", build_record(
                {label: replace(c.artifact, ir_text="") for label, c in built.compiled.items()}, built.bindings))
        return replace(built, bound=bind(json.loads(json.dumps(built.bindings))))  # as a record gives them

    @staticmethod
    def _recorded(source: str, context: str, bind: Callable[[dict], Bound]) -> Built[Bound] | None:
        text = load_record(source, "build")
        if text is None:
            return None
        try:
            artifacts, bindings = build_from_record(text)
            bound = bind(bindings)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            log(1, "compile cache: a build record that does not fit its program: rebuilding")
            return None
        native = load_all_cached([(a.source, a.signature(), a.entry) for a in artifacts.values()])
        if native is None:
            return None
        return Built({label: CompiledGraph(a, context, native) for label, a in artifacts.items()}, bindings, bound)

    def _emit(self, name: str, label: str, value: Any, start: float) -> Any:
        self.observe(Stage(name, label, value, time.perf_counter() - start))
        return value

    def optimize(self, graph: Graph, label: str) -> Graph:
        """traced, then the graph after each pass of PIPELINE, then optimized."""
        self._emit("traced", label, graph, time.perf_counter())
        start = time.perf_counter()
        return self._emit("optimized", label, optimize(graph, PIPELINE, after_each=self._after_each(label)), start)

    def _after_each(self, label: str) -> Callable[[str, Graph, float], None]:
        return lambda name, g, seconds: self.observe(Stage(f"after:{name}", label, g, seconds))

    def hoist(self, graph: Graph, label: str) -> Hoisted:
        """prepared: the prepare graph (parameter-only values) split off an inference graph."""
        start = time.perf_counter()
        return self._emit("prepared", label, hoist(graph), start)

    def differentiate(self, forward: Graph, wrt: Sequence[int], label: str = "backward") -> tuple[Graph, BackwardGraph]:
        """joint (forward and backward in one graph, w.r.t. the inputs `wrt`), then partitioned
        by a min-cut: the forward graph that also returns what the backward reads, and the
        (optimised) backward graph, which recomputes cheap values instead of saving them."""
        start = time.perf_counter()
        joint = self._emit("joint", label, joint_graph(forward, wrt), start)
        start = time.perf_counter()
        forward_train, backward = partition(joint)
        backward = BackwardGraph(optimize(backward.graph, PIPELINE), backward.saved, backward.wrt)
        self._emit("partitioned", label, backward, start)
        return forward_train, backward

    def differentiated(self, joint: Graph, label: str) -> Graph:
        """A graph that already holds its gradients (a train step's forward, backward and
        update), optimised and reported as the differentiated stage."""
        start = time.perf_counter()
        return self._emit("differentiated", label, optimize(joint, PIPELINE), start)

    def lower(self, graph: Graph, name: str, label: str) -> Artifact:
        """kernels (the program of the graph after KERNEL_PIPELINE), planned (its buffers), llvm."""
        return self._lower(self._kernels(graph, label), name, label)

    def _kernels(self, graph: Graph, label: str) -> Program:
        """The planned kernel program, made once and used by the cache lookup and lowering: the
        graph's kernel passes (fusion into nodes), then the program's (multi-output grouping,
        scheduling), reported as kernels, then buffer planning, reported as planned."""
        start = time.perf_counter()
        kernels = optimize(graph, KERNEL_PIPELINE, after_each=self._after_each(label))
        program = self._emit("kernels", label, build_program(kernels, after_each=self._after_each(label)), start)
        start = time.perf_counter()
        return self._emit("planned", label, planned(program), start)

    def _lower(self, program: Program, name: str, label: str) -> Artifact:
        start = time.perf_counter()
        lowered = lower(program, name)
        self._emit("llvm", label, lowered.ir_text, start)
        return _artifact(program.graph, name, lowered.ir_text, lowered.workspace_bytes, lowered.checks)

    def compile(self, graph: Graph, name: str, label: str, context: str = "") -> CompiledGraph:
        """lower, then native code (CompiledGraph loads the artifact). The kernel program is
        made first; below GRAPHC_DEBUG=4 (nobody reads the LLVM IR) the disk cache is asked
        then, keyed on the kernel graph, so a hit skips lowering. (A whole build recorded under
        its traced graph, see `build`, skips even the kernel passes.)"""
        program = self._kernels(graph, label)
        start = time.perf_counter()
        source = graph_digest(program.graph, name, num_threads())
        if self.observe is log_stage and debug_level() < 4:
            expected = _artifact(program.graph, name, "", workspace_bytes(program), check_specs(program), source)
            native = load_cached(source, expected.signature(), name)
            if native is not None:
                return self._emit("native", label, CompiledGraph(expected, context, native), start)
        artifact = replace(self._lower(program, name, label), source=source)
        start = time.perf_counter()
        return self._emit("native", label, CompiledGraph(artifact, context), start)


def _artifact(kernels: Graph, name: str, ir_text: str, workspace: int, checks: tuple, source: str | None = None
              ) -> Artifact:
    return Artifact(name, ir_text, name, workspace,
                    _buffers(kernels, [n.id for n in kernels.inputs], [n.attr("name") for n in kernels.inputs]),
                    _buffers(kernels, kernels.outputs, kernels.output_names), _updated(kernels), checks, source)


def _buffers(graph: Graph, ids: Sequence[int], names: Sequence[str]) -> tuple[BufferSpec, ...]:
    return tuple(BufferSpec(name, graph.nodes[i].shape, np.dtype(graph.nodes[i].dtype)) for i, name in zip(ids, names))


def _updated(graph: Graph) -> frozenset[int]:
    position = {n.id: j for j, n in enumerate(graph.inputs)}
    return frozenset(position[target] for _, target in graph.updates)


def compile_graph(graph: Graph, name: str = "graphc_main", context: str = "") -> CompiledGraph:
    """Kernel passes, lowering and native code for one graph (tests and tools use this)."""
    return Driver().compile(graph, name, name, context)
