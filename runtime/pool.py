"""A persistent pool of native worker threads that kernels split their work across.

Kernels call `graphc_parallel(part, context, parts)`: the caller and the workers claim part
indices from one atomic word and run `part(context, index)` until none is left; the caller
returns when every part is done. Starting a pthread per kernel cost 90-170 µs on this VM; a
worker that spins for a while after its last part (then sleeps on a futex) starts a new part
in about a microsecond.

The claim word packs (job generation << 32 | parts << 16 | next index), so a worker can only
claim a part of the running job, and reads the job's function and context after its claim,
while the caller still waits for that part. The caller publishes a job with part 0 claimed and
runs it itself: a kernel's first part then runs on the calling thread every call, the next on
whichever worker claims first, so with two threads each core reads the same half of a layer's
weights call after call (from its own L2, once warm). One job runs at a time: a caller that finds the
pool busy (another Python thread's graph) runs its parts itself. The pool lives as long as
the process: started on first use, stopped at exit, forgotten in a forked child.
"""
from __future__ import annotations

import atexit
import ctypes
import os
import platform
import threading
from typing import Callable, Sequence

import llvmlite.binding as llvm

from graphc.config import num_threads
from .abi import PARALLEL_ENTRY as ENTRY
from .jit import NativeModule, load_objects, native_code, object_code
from .link import linker

MAX_WORKERS = 64
SPINS_BEFORE_SLEEP = 1 << 17  # a few ms of `pause` after the last part, then a futex sleep

POOL_IR = r"""
@claim = internal global i64 0, align 64
@remaining = internal global i64 0, align 64
@job_fn = internal global ptr null, align 64
@job_ctx = internal global ptr null, align 64
@busy = internal global i32 0, align 64
@epoch = internal global i32 0, align 64
@sleepers = internal global i32 0, align 64
@stop = internal global i32 0, align 64
@workers = internal global i64 0, align 64
@threads = internal global [MAX_WORKERS x i64] zeroinitializer, align 64

declare void @llvm.x86.sse2.pause()
declare i64 @syscall(i64, ...)
declare i32 @pthread_create(ptr, ptr, ptr, ptr)
declare i32 @pthread_join(i64, ptr)

; claim and run parts of the current job until none is left
define internal void @work() {
entry:
  br label %loop
loop:
  %word = load atomic i64, ptr @claim seq_cst, align 8
  %index = and i64 %word, 65535
  %shifted = lshr i64 %word, 16
  %parts = and i64 %shifted, 65535
  %more = icmp ult i64 %index, %parts
  br i1 %more, label %try, label %done
try:
  %next = add i64 %word, 1
  %pair = cmpxchg ptr @claim, i64 %word, i64 %next seq_cst seq_cst
  %ok = extractvalue { i64, i1 } %pair, 1
  br i1 %ok, label %run, label %loop
run:
  %fn = load atomic ptr, ptr @job_fn seq_cst, align 8
  %ctx = load atomic ptr, ptr @job_ctx seq_cst, align 8
  call void %fn(ptr %ctx, i64 %index)
  %left = atomicrmw sub ptr @remaining, i64 1 seq_cst
  br label %loop
done:
  ret void
}

; a worker: read the epoch, work, spin until the epoch moves, sleep on it when idle long
define internal ptr @worker_main(ptr %unused) {
entry:
  br label %wait
wait:
  %epoch0 = load atomic i32, ptr @epoch seq_cst, align 4
  %stopping = load atomic i32, ptr @stop seq_cst, align 4
  %quit = icmp ne i32 %stopping, 0
  br i1 %quit, label %exit, label %working
working:
  call void @work()
  br label %spin
spin:
  %i = phi i64 [0, %working], [%i1, %idle]
  %epoch1 = load atomic i32, ptr @epoch seq_cst, align 4
  %moved = icmp ne i32 %epoch1, %epoch0
  br i1 %moved, label %wait, label %idle
idle:
  call void @llvm.x86.sse2.pause()
  %i1 = add i64 %i, 1
  %long = icmp ugt i64 %i1, SPINS_BEFORE_SLEEP
  br i1 %long, label %sleep, label %spin
sleep:
  %s0 = atomicrmw add ptr @sleepers, i32 1 seq_cst
  %expected = zext i32 %epoch0 to i64
  %slept = call i64 (i64, ...) @syscall(i64 202, ptr @epoch, i64 128, i64 %expected, ptr null, ptr null, i64 0)
  %s1 = atomicrmw sub ptr @sleepers, i32 1 seq_cst
  br label %wait
exit:
  ret ptr null
}

define void @graphc_parallel(ptr %fn, ptr %ctx, i64 %parts) {
entry:
  %workers = load atomic i64, ptr @workers seq_cst, align 8
  %few = icmp ule i64 %parts, 1
  %alone = icmp eq i64 %workers, 0
  %serial_now = or i1 %few, %alone
  br i1 %serial_now, label %serial, label %lock
lock:
  %pair = cmpxchg ptr @busy, i32 0, i32 1 seq_cst seq_cst
  %got = extractvalue { i32, i1 } %pair, 1
  br i1 %got, label %publish, label %serial
publish:
  store atomic ptr %fn, ptr @job_fn seq_cst, align 8
  store atomic ptr %ctx, ptr @job_ctx seq_cst, align 8
  store atomic i64 %parts, ptr @remaining seq_cst, align 8
  %old = load atomic i64, ptr @claim seq_cst, align 8
  %generation = lshr i64 %old, 32
  %generation1 = add i64 %generation, 1
  %high = shl i64 %generation1, 32
  %middle = shl i64 %parts, 16
  %claims = or i64 %high, %middle
  %word = or i64 %claims, 1
  store atomic i64 %word, ptr @claim seq_cst, align 8
  %e = atomicrmw add ptr @epoch, i32 1 seq_cst
  %sleeping = load atomic i32, ptr @sleepers seq_cst, align 4
  %any = icmp ne i32 %sleeping, 0
  br i1 %any, label %wake, label %participate
wake:
  %woken = call i64 (i64, ...) @syscall(i64 202, ptr @epoch, i64 129, i64 2147483647, ptr null, ptr null, i64 0)
  br label %participate
participate:
  call void %fn(ptr %ctx, i64 0)
  %own = atomicrmw sub ptr @remaining, i64 1 seq_cst
  call void @work()
  br label %finish
finish:
  %left = load atomic i64, ptr @remaining seq_cst, align 8
  %all = icmp eq i64 %left, 0
  br i1 %all, label %unlock, label %pausing
pausing:
  call void @llvm.x86.sse2.pause()
  br label %finish
unlock:
  store atomic i32 0, ptr @busy seq_cst, align 4
  ret void
serial:
  %k = phi i64 [0, %entry], [0, %lock], [%k1, %serial_body]
  %go = icmp ult i64 %k, %parts
  br i1 %go, label %serial_body, label %serial_done
serial_body:
  call void %fn(ptr %ctx, i64 %k)
  %k1 = add i64 %k, 1
  br label %serial
serial_done:
  ret void
}

; start workers until there are `count` (at most MAX_WORKERS); returns how many run
define i64 @graphc_pool_start(i64 %count) {
entry:
  br label %loop
loop:
  %n = load atomic i64, ptr @workers seq_cst, align 8
  %want = icmp ult i64 %n, %count
  %room = icmp ult i64 %n, MAX_WORKERS
  %both = and i1 %want, %room
  br i1 %both, label %create, label %done
create:
  %slot = getelementptr inbounds [MAX_WORKERS x i64], ptr @threads, i64 0, i64 %n
  %rc = call i32 @pthread_create(ptr %slot, ptr null, ptr @worker_main, ptr null)
  %ok = icmp eq i32 %rc, 0
  br i1 %ok, label %started, label %done
started:
  %n1 = add i64 %n, 1
  store atomic i64 %n1, ptr @workers seq_cst, align 8
  br label %loop
done:
  %running = load atomic i64, ptr @workers seq_cst, align 8
  ret i64 %running
}

; stop and join every worker (at exit; no job may be running)
define void @graphc_pool_stop() {
entry:
  store atomic i32 1, ptr @stop seq_cst, align 4
  %e = atomicrmw add ptr @epoch, i32 1 seq_cst
  %woken = call i64 (i64, ...) @syscall(i64 202, ptr @epoch, i64 129, i64 2147483647, ptr null, ptr null, i64 0)
  %n = load atomic i64, ptr @workers seq_cst, align 8
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%i1, %body]
  %more = icmp ult i64 %i, %n
  br i1 %more, label %body, label %done
body:
  %slot = getelementptr inbounds [MAX_WORKERS x i64], ptr @threads, i64 0, i64 %i
  %thread = load i64, ptr %slot, align 8
  %rc = call i32 @pthread_join(i64 %thread, ptr null)
  %i1 = add i64 %i, 1
  br label %loop
done:
  store atomic i64 0, ptr @workers seq_cst, align 8
  store atomic i32 0, ptr @stop seq_cst, align 4
  ret void
}

; in a forked child the workers do not exist: forget them (and a job the parent was running)
define void @graphc_pool_forget() {
entry:
  store atomic i64 0, ptr @workers seq_cst, align 8
  store atomic i32 0, ptr @busy seq_cst, align 4
  ret void
}
"""

# Linux futex syscall numbers; on other machines the pool runs no workers (kernels run in turn)
FUTEX_SYSCALL = {"x86_64": 202, "aarch64": 98}


def pool_ir(machine: str = platform.machine()) -> str:
    """The pool module for this machine: its futex syscall number and spin-wait hint."""
    text = POOL_IR.replace("MAX_WORKERS", str(MAX_WORKERS)).replace("SPINS_BEFORE_SLEEP", str(SPINS_BEFORE_SLEEP))
    text = text.replace("i64 202,", f"i64 {FUTEX_SYSCALL.get(machine, -1)},")
    if machine != "x86_64":  # `pause` is x86's; elsewhere the loop spins without the hint
        text = text.replace("  call void @llvm.x86.sse2.pause()\n", "").replace(
            "declare void @llvm.x86.sse2.pause()\n", "")
    return text

SIGNATURE = "pool entry=graphc_pool_start"  # its cache entry's
_SIGNATURES = {"graphc_pool_start": ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64),
               "graphc_pool_stop": ctypes.CFUNCTYPE(None), "graphc_pool_forget": ctypes.CFUNCTYPE(None)}
_lock = threading.Lock()
_engine = None
_functions: dict[str, object] = {}
_started = -1  # workers running; -1 until the pool is compiled


def ensure_started() -> None:
    """Load the pool once, make `graphc_parallel` resolvable for kernels, and run as many
    workers as GRAPHC_NUM_THREADS (or the CPUs) asks beside the calling thread."""
    if _started < num_threads() - 1:
        with _lock:
            if _engine is None:
                _adopt(lambda pool: load_objects(pool, start_pool=False, global_symbols=True))
            _start()


def load_with_pool(code: Sequence[bytes]) -> NativeModule:
    """`code` loaded with the pool started. As a shared library the pool is loaded first, its
    symbols global. Through MCJIT, the first time in a process the pool's own object code joins
    `code` in one engine, which saves an engine's creation (about 1 ms of a warm start); that
    engine then lives as long as the process, with the code it was loaded with."""
    if _engine is None and linker() is None:
        with _lock:
            if _engine is None:
                native = _adopt(lambda pool: load_objects([*pool, *code], start_pool=False))
                _start()
                return native
    ensure_started()
    return load_objects(code, start_pool=False)


def _adopt(load: Callable[[Sequence[bytes]], NativeModule]) -> NativeModule:
    """Load the pool (through the disk cache, at O0: its loops wait on atomics and futexes) with
    `load`, and take its functions; a cached pool object lacking them is compiled afresh."""
    global _engine
    from .cache import cached_objects
    native = load(cached_objects(pool_ir(), SIGNATURE, opt=0))
    if not all(native.has(name) for name in (*_SIGNATURES, ENTRY)):
        native = load(native_code([object_code(pool_ir(), 0)]))
    _functions.update({name: signature(native.address(name)) for name, signature in _SIGNATURES.items()})
    llvm.add_symbol(ENTRY, native.address(ENTRY))  # for the engines loaded after this one
    _engine = native
    atexit.register(_stop)
    os.register_at_fork(after_in_child=_forget)
    return native


def _start() -> None:
    global _started
    wanted = num_threads() - 1
    if _started < wanted:
        _started = _functions["graphc_pool_start"](wanted if platform.machine() in FUTEX_SYSCALL else 0)


def _stop() -> None:
    global _started
    if _engine is not None:
        _functions["graphc_pool_stop"]()
        _started = -1


def _forget() -> None:
    global _started
    if _engine is not None:
        _functions["graphc_pool_forget"]()
        _started = -1
