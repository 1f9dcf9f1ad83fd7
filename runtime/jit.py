"""Compile LLVM IR text to native code for the host CPU with llvmlite's MCJIT.

Facts this relies on (see /work/shared/LLVM_NOTES.md): every engine gets its own target
machine, because MCJIT takes ownership of it and sharing one crashed the process; and
`emit_assembly`/`emit_object` mutate their module, so dumps work on a fresh parse.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import llvmlite.binding as llvm

from .link import SharedLibrary, is_shared_library, link_shared, linker

# llvm.initialize() raises in llvmlite 0.50; the native target and printer still need this.
llvm.initialize_native_target()
llvm.initialize_native_asmprinter()

# libm functions generated code may call. MCJIT resolves them from the process itself
# (checked by tests/runtime/test_jit.py), so no `llvm.add_symbol` registration is needed.
MATH_SYMBOLS = ("expf", "logf", "tanhf", "exp", "log", "tanh", "powf", "pow", "sqrtf", "sqrt")


@functools.cache
def _host_cpu() -> tuple[str, str]:
    """The host CPU's name and features as LLVM names them, once per process, from the disk
    cache when it holds them for this CPU (runtime/cache.py, keyed on /proc/cpuinfo), else
    asked of LLVM: its cpuid queries took 0.7-1 ms of every warm start in a VM, where each
    cpuid leaves to the hypervisor."""
    from .cache import known_host_cpu, store_host_cpu
    known = known_host_cpu()
    if known is not None:
        return known
    found = _ask_llvm_host_cpu()
    store_host_cpu(found)
    return found


def _ask_llvm_host_cpu() -> tuple[str, str]:
    """With AVX-512 the loop vectoriser may use 512-bit vectors: Intel server parts are tuned
    `prefer-256-bit`, which left elementwise loops at 8 lanes, measured 1.2-2x slower than 16
    (exp, log, tanh on 128x512); the micro-kernel sizes its registers from the host anyway."""
    features = llvm.get_host_cpu_features()
    return llvm.get_host_cpu_name(), features.flatten() + (",-prefer-256-bit" if features.get("avx512f", False) else "")


def host_target_machine(opt: int = 3) -> llvm.TargetMachine:
    """A new target machine for this CPU; without the CPU name and features LLVM emits SSE
    only. Never share the result between engines: an engine owns its target machine. Code for
    a shared library is position-independent with the small code model; MCJIT's uses its own
    default, the large model (runtime/link.py)."""
    target = llvm.Target.from_triple(llvm.get_process_triple())
    cpu, features = _host_cpu()
    if linker() is not None:
        return target.create_target_machine(cpu=cpu, features=features, opt=opt, reloc="pic", codemodel="small")
    return target.create_target_machine(cpu=cpu, features=features, opt=opt, jit=True)


def _mcjit_target_machine() -> llvm.TargetMachine:
    """The target machine an engine owns: its code generation only runs on the empty module the
    engine is made over (at opt 0: finalize 0.9 -> 0.3 ms)."""
    target = llvm.Target.from_triple(llvm.get_process_triple())
    cpu, features = _host_cpu()
    return target.create_target_machine(cpu=cpu, features=features, opt=0, jit=True)


def _parse(ir_text: str, machine: llvm.TargetMachine) -> llvm.ModuleRef:
    """Parse and verify, turning LLVM's RuntimeError into a ValueError that says which step."""
    try:
        module = llvm.parse_assembly(ir_text)
    except RuntimeError as error:
        raise ValueError(f"LLVM could not parse the IR: {error}") from None
    module.triple = machine.triple
    module.data_layout = str(machine.target_data)
    try:
        module.verify()
    except RuntimeError as error:
        raise ValueError(f"LLVM IR failed verification: {error}") from None
    return module


# per level object_code() takes, what it does (the cache key names it)
OPTIMIZATION = {3: "O3 vectorize slp interleave no-unroll", 0: "no IR passes, codegen O0"}


def optimize(ir_text: str) -> llvm.ModuleRef:
    """Parse, verify and run the O3 pipeline with the vectorisers and interleaving on, tuned
    for the host CPU. Unrolling stays off: with static trip counts it doubled compile time
    (2.3 s -> 0.9 s for a 100-node train step) and did not speed the kernels, whose hot
    loops (matmul tiles) are already unrolled by the emitters."""
    machine = host_target_machine()
    module = _parse(ir_text, machine)
    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    tuning.loop_unrolling = False
    tuning.loop_interleaving = True
    passes = llvm.create_pass_builder(machine, tuning)
    passes.getModulePassManager().run(module, passes)
    return module


@dataclass(eq=False)
class NativeModule:
    """Compiled code kept loaded: shared libraries (runtime/link.py) or an MCJIT engine.

    Holding this keeps function addresses valid; the code is unloaded with it. `source_ir`
    (the IR as graphc emitted it) serves dumps.
    """

    engine: llvm.ExecutionEngine | None = None
    libraries: tuple[SharedLibrary, ...] = ()
    source_ir: str = ""

    def address(self, name: str) -> int:
        """Address of a compiled function, to wrap in `ctypes.CFUNCTYPE`."""
        address = self.engine.get_function_address(name) if self.engine is not None else 0
        for library in self.libraries:
            address = address or library.address(name)
        if not address:
            raise KeyError(f"no function named {name!r} in the compiled module")
        return address

    def has(self, name: str) -> bool:
        try:
            return bool(self.address(name))
        except KeyError:
            return False

    def optimized_ir(self) -> str:
        return optimized_ir(self._source())

    def assembly(self) -> str:
        """Host assembly for dumps, from a fresh optimisation of the source IR."""
        return assembly(self._source())

    def _source(self) -> str:
        if not self.source_ir:
            raise ValueError("module was loaded from object code without its IR text")
        return self.source_ir


def compile_ir(ir_text: str) -> NativeModule:
    """Optimise and compile IR text to machine code callable in this process."""
    return load_object(object_code(ir_text), ir_text)


def optimized_ir(ir_text: str) -> str:
    """The IR after the O3 pipeline, for dumps."""
    return str(optimize(ir_text))


def assembly(ir_text: str) -> str:
    """Host assembly of the optimised IR, for dumps (a fresh module: emit_assembly mutates it)."""
    return host_target_machine().emit_assembly(optimize(ir_text))


def object_code(ir_text: str, opt: int = 3) -> bytes:
    """Relocatable object code of the optimised IR: what the on-disk cache stores. `opt=0` skips
    the IR passes and codegens at O0, for code whose speed is not in its instructions (the
    thread pool waits on atomics and futexes: its O3 compile cost 25 ms of every cold start)."""
    if opt == 0:
        machine = host_target_machine(opt=0)
        return machine.emit_object(_parse(ir_text, machine))
    return host_target_machine().emit_object(optimize(ir_text))


def load_object(obj: bytes, source_ir: str = "", start_pool: bool = True) -> NativeModule:
    """Load object code from `object_code` (about 1 ms, no optimisation or codegen of it).

    Pass the IR text too if `assembly()` should work on the result. `start_pool=False` is for
    loading the thread pool itself.
    """
    native = load_objects([obj], start_pool)
    native.source_ir = source_ir
    return native


def load_objects(code: Sequence[bytes], start_pool: bool = True, global_symbols: bool = False) -> NativeModule:
    """Load compiled code: shared libraries as they are, and objects linked into one more
    (runtime/link.py), or without a linker all objects into one MCJIT engine, so the graphs
    of one build (a forward and its prepare graph, say) cost one engine's creation (about
    1 ms) instead of one each. Their external symbols (the entry points) must differ;
    everything else they define is private. `global_symbols` makes a library's symbols
    resolve for the libraries loaded after it (the thread pool's)."""
    if start_pool:  # kernels that split across threads call the pool: it resolves that symbol
        from .pool import load_with_pool
        return load_with_pool(code)
    if linker() is not None:
        objects = [c for c in code if not is_shared_library(c)]
        libraries = [c for c in code if is_shared_library(c)] + ([link_shared(objects)] if objects else [])
        return NativeModule(libraries=tuple(SharedLibrary(c, global_symbols) for c in libraries))
    machine = _mcjit_target_machine()
    engine = llvm.create_mcjit_compiler(_parse("", machine), machine)
    for obj in code:
        engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
    engine.finalize_object()
    return NativeModule(engine)


def native_code(objects: list[bytes]) -> list[bytes]:
    """What the cache keeps of a graph's objects: one shared library linked from them where a
    linker is used, else the objects themselves (MCJIT loads those)."""
    return [link_shared(objects)] if linker() is not None and objects else objects


@functools.cache
def machine_description(opt: int = 3) -> str:
    """Everything about this host and toolchain that changes the machine code for one IR text
    compiled by object_code(ir_text, opt)."""
    import llvmlite
    kind = "shared library, pic, small code model" if linker() is not None else "mcjit objects"
    return "|".join((llvmlite.__version__, llvm.get_process_triple(), *_host_cpu(), OPTIMIZATION[opt], kind))
