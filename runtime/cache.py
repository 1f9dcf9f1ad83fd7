"""On-disk cache of compiled object code, so a graph compiled once loads in milliseconds.

What it trusts: files in a folder private to the user (mode 0700, owned by them). Everything
else is recompiled. An entry is one file named by the sha256 of its key text:

    graphc-object-3\\n
    {"key": "<full key text>", "signature": "<ABI signature>"}\\n
    sha256 <hex digest of the payload>\\n
    <payload: "objects <n> <size 1> ... <size n>\\n", then the n objects' bytes>

The key text names everything that decides the machine code (cache format, graphc's version,
llvmlite's version, target triple, CPU name and features, optimisation settings, the caller's
ABI signature and the sha256 of the IR text). Before any byte reaches LLVM, the first two
lines must equal what the caller expects and the digest must match; after loading, the entry
symbol must exist. Anything else - a copied, damaged, short, hostile or foreign entry, a
FIFO, a device, a symlink, an oversized file - is a miss: compile afresh and atomically
replace the entry. A read-only or full disk costs speed, never correctness.

GRAPHC_CACHE_DIR picks the folder (default: $XDG_CACHE_HOME/graphc or ~/.cache/graphc);
GRAPHC_CACHE=0 switches the cache off; GRAPHC_CACHE_MAX_BYTES bounds the folder (default
1 GiB; least recently used entries go first).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
import warnings
from pathlib import Path

from graphc.config import env_bool, env_int, env_str, num_threads
from graphc.debug import log

from .jit import NativeModule, load_objects, machine_description, native_code
from .parallel_codegen import compile_objects

FORMAT = "graphc-object-4"  # 4: an entry holds a shared library, or objects for MCJIT (runtime/link.py)
MAX_ENTRY_BYTES = 64 << 20  # larger files are not graphc entries: never read them
DEFAULT_MAX_BYTES = 1 << 30
SUFFIX = ".o"
TEMPORARY_PREFIX = ".graphc-tmp-"
_ENTRY_NAME = re.compile(r"[0-9a-f]{64}\.o")
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC  # a FIFO must not block
_refused: set[str] = set()  # folders already reported as unsafe


def cache_dir() -> Path:
    """The configured folder, whether or not caching is on."""
    folder = env_str("GRAPHC_CACHE_DIR")
    if folder:
        return Path(folder)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "graphc"


def enabled() -> bool:
    """False when GRAPHC_CACHE switches the cache off."""
    return env_bool("GRAPHC_CACHE", True)


def max_bytes() -> int:
    """GRAPHC_CACHE_MAX_BYTES, or the default (with a warning) when it is not a size in bytes."""
    return env_int("GRAPHC_CACHE_MAX_BYTES", DEFAULT_MAX_BYTES, minimum=0)


def key_text(ir_text: str, signature: str, source: str | None = None, opt: int = 3) -> str:
    """Everything an entry must match, in full. `source` names what the machine code is made
    from: by default the IR text's digest; the driver passes its graph digest instead, so a hit
    can skip lowering (graphc/stages.py). `opt` is object_code's optimisation level."""
    from graphc import __version__
    return "\n".join((f"format={FORMAT}", f"graphc={__version__}", f"machine={machine_description(opt)}",
                      f"signature={signature}", _source(ir_text, source)))


def _entry_path(folder: Path, key: str) -> Path:
    return folder / f"{hashlib.sha256(key.encode()).hexdigest()}{SUFFIX}"


def cache_key(ir_text: str, signature: str, source: str | None = None) -> str:
    """The entry's file name without its suffix."""
    return hashlib.sha256(key_text(ir_text, signature, source).encode()).hexdigest()


def _header(key: str, signature: str) -> bytes:
    fields = json.dumps({"key": key, "signature": signature}, sort_keys=True)
    return f"{FORMAT}\n{fields}\n".encode()


def _digest_line(obj: bytes) -> bytes:
    return f"sha256 {hashlib.sha256(obj).hexdigest()}\n".encode()


def encode_entry(key: str, signature: str, obj: bytes) -> bytes:
    """The bytes of an entry file."""
    return _header(key, signature) + _digest_line(obj) + obj


def _read_regular(path: Path) -> bytes | None:
    """The whole content of a regular file of at most MAX_ENTRY_BYTES, else None."""
    try:
        fd = os.open(path, _OPEN_FLAGS)  # a symlink fails here (O_NOFOLLOW)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_ENTRY_BYTES:
            return None
        chunks, left = [], info.st_size
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                return None  # shorter than fstat said
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_entry(path: Path, header: bytes) -> bytes | None:
    """The object bytes of the entry at `path` if its header is exactly `header` and its digest
    matches, else None."""
    data = _read_regular(path)
    if data is None or not data.startswith(header):
        return None
    digest_end = len(header) + len(_digest_line(b""))
    obj = data[digest_end:]
    if not obj or data[len(header):digest_end] != _digest_line(obj):
        return None
    return obj


def _unsafe(folder: Path) -> str | None:
    """Why `folder` may not hold entries we load, or None when it is ours alone."""
    try:
        info = os.stat(folder)
    except OSError as error:
        return str(error)
    if not stat.S_ISDIR(info.st_mode):
        return "not a folder"
    if info.st_uid != os.getuid():
        return f"owned by uid {info.st_uid}, not by you (uid {os.getuid()})"
    if info.st_mode & 0o022:
        return f"writable by others (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def _private_folder() -> Path | None:
    """The cache folder, created 0700 if missing; None when caching is off or the folder is unsafe."""
    if not enabled():
        return None
    folder = cache_dir()
    try:
        os.makedirs(folder, mode=0o700)
        os.chmod(folder, 0o700)  # the umask may have taken bits away; we want exactly 0700
    except FileExistsError:
        pass
    except OSError as error:
        log(1, f"could not create the compile cache at {folder}: {error}")
        return None
    reason = _unsafe(folder)
    if reason is not None:
        if str(folder) not in _refused:
            _refused.add(str(folder))
            message = f"graphc: not using the compile cache at {folder}: {reason}; compiling without it"
            log(1, message)
            warnings.warn(message, stacklevel=3)
        return None
    return folder


def _entries(folder: Path) -> list[tuple[Path, os.stat_result]]:
    """graphc entries in `folder` that are regular files, with their lstat."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = []
    for name in names:
        if _ENTRY_NAME.fullmatch(name):
            try:
                info = os.lstat(folder / name)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                found.append((folder / name, info))
    return found


def _evict(folder: Path) -> None:
    """Delete least recently used entries until the folder is within GRAPHC_CACHE_MAX_BYTES."""
    bound = max_bytes()
    entries = sorted(_entries(folder), key=lambda entry: entry[1].st_mtime_ns)
    total = sum(info.st_size for _, info in entries)
    for path, info in entries:
        if total <= bound:
            break
        try:
            os.unlink(path)
            log(1, f"compile cache evicted {path.name[:16]}")
        except OSError:
            pass
        total -= info.st_size


def _write(folder: Path, path: Path, data: bytes) -> None:
    """Replace `path` atomically (the name itself: a symlink or FIFO there is replaced, not followed)."""
    temporary = None
    try:
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=TEMPORARY_PREFIX)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
        temporary = None
    except OSError as error:  # a read-only or full disk costs speed, not correctness
        log(1, f"could not write the compile cache at {path}: {error}")
        return
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except OSError:
                pass
    _evict(folder)


def pack_objects(objects: list[bytes]) -> bytes:
    """An entry's payload: its objects (one per codegen partition) with their sizes in front."""
    return f"objects {len(objects)} {' '.join(str(len(o)) for o in objects)}\n".encode() + b"".join(objects)


def unpack_objects(payload: bytes) -> list[bytes] | None:
    """The objects pack_objects packed, or None unless the payload is exactly that."""
    line, newline, rest = payload.partition(b"\n")
    fields = line.split(b" ")
    if not newline or len(fields) < 3 or fields[0] != b"objects" or not all(f.isdigit() for f in fields[1:]):
        return None
    sizes = [int(f) for f in fields[2:]]
    if int(fields[1]) != len(sizes) or sum(sizes) != len(rest) or not all(sizes):
        return None
    objects, start = [], 0
    for size in sizes:
        objects.append(rest[start:start + size])
        start += size
    return objects


def read_cached(source: str, signature: str, opt: int = 3) -> list[bytes] | None:
    """The objects of the entry made from `source` (see key_text) for this ABI `signature`,
    level and machine, if one exists and passes every check before LLVM sees it; else None."""
    folder = _private_folder()
    if folder is None:
        return None
    key = key_text("", signature, source, opt)
    path = _entry_path(folder, key)
    payload = _read_entry(path, _header(key, signature))
    objects = None if payload is None else unpack_objects(payload)
    if objects is None:
        return None
    try:
        os.utime(path, follow_symlinks=False)  # recently used: evicted last
    except OSError:
        pass
    return objects


def load_cached(source: str, signature: str, entry: str, start_pool: bool = True, opt: int = 3
                ) -> NativeModule | None:
    """The entry made from `source` (see key_text) for this ABI `signature` and machine, loaded,
    if one exists and defines `entry`; else None."""
    return load_all_cached([(source, signature, entry)], start_pool, opt)


def load_all_cached(entries: list[tuple[str, str, str]], start_pool: bool = True, opt: int = 3
                    ) -> NativeModule | None:
    """The entries named by (source, ABI signature, entry symbol), loaded into one engine, if
    every one exists and the loaded code defines every entry symbol; else None."""
    objects = []
    for source, signature, _ in entries:
        found = read_cached(source, signature, opt)
        if found is None:
            return None
        objects += found
    native = load_objects(objects, start_pool)
    for _, _, entry in entries:
        if not native.has(entry):
            log(1, f"compile cache entry for {entry!r} lacks its entry point: recompiling")
            return None
    log(1, f"compile cache hit: {', '.join(entry for _, _, entry in entries)}")
    return native


def _record_path(folder: Path, source: str, kind: str) -> tuple[Path, str, str]:
    signature = f"{kind} record"
    key = key_text("", signature, source)
    return _entry_path(folder, key), key, signature


def load_record(source: str, kind: str) -> str | None:
    """The text `store_record` kept for `source` and `kind` (a build record, say), if its entry is
    sound (the same checks as object entries: private folder, full key, digest); else None.
    What the text says is the caller's to check."""
    folder = _private_folder()
    if folder is None:
        return None
    path, key, signature = _record_path(folder, source, kind)
    record = _read_entry(path, _header(key, signature))
    if record is None:
        return None
    try:
        text = record.decode()
    except UnicodeDecodeError:
        return None
    try:
        os.utime(path, follow_symlinks=False)  # used with the object entries it names: evicted as late
    except OSError:
        pass
    return text


def store_record(source: str, kind: str, text: str) -> None:
    """Keep `text` under `source` (a digest of what it was made from) and `kind`: best effort,
    like every cache write."""
    folder = _private_folder()
    if folder is None:
        return
    path, key, signature = _record_path(folder, source, kind)
    _write(folder, path, encode_entry(key, signature, text.encode()))


_CPUINFO_FIELDS = ("vendor_id", "cpu family", "model", "model name", "stepping", "microcode", "flags",
                   "CPU implementer", "CPU architecture", "CPU variant", "CPU part", "CPU revision", "Features")
_CPU_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_CPU_FEATURES = re.compile(r"[+-][A-Za-z0-9_.-]+(,[+-][A-Za-z0-9_.-]+)*")


def cpu_fingerprint() -> str | None:
    """What identifies this CPU's instruction set without asking it (each cpuid is a hypervisor
    exit in a VM): the first processor's identity and feature flags in /proc/cpuinfo, as the
    kernel found them at boot, with what it masked. None off Linux or when unreadable."""
    try:
        with open("/proc/cpuinfo", "rb") as f:
            text = f.read(1 << 20).decode(errors="replace")
    except OSError:
        return None
    first = text.split("\n\n", 1)[0]
    fields = [line for line in first.splitlines() if line.split(":", 1)[0].strip() in _CPUINFO_FIELDS]
    return "\n".join(fields) if any(line.startswith(("flags", "Features")) for line in fields) else None


def _host_entry(folder: Path, fingerprint: str) -> tuple[Path, str, str]:
    import llvmlite
    import llvmlite.binding as llvm
    key = "\n".join((f"format={FORMAT}", "host cpu as LLVM names it", f"llvmlite={llvmlite.__version__}",
                     f"triple={llvm.get_process_triple()}", fingerprint))
    return _entry_path(folder, key), key, "host cpu"


def known_host_cpu() -> tuple[str, str] | None:
    """The (name, features) store_host_cpu kept for this CPU (cpu_fingerprint), if sound."""
    folder, fingerprint = _private_folder(), cpu_fingerprint()
    if folder is None or fingerprint is None:
        return None
    path, key, signature = _host_entry(folder, fingerprint)
    payload = _read_entry(path, _header(key, signature))
    try:
        name, features = json.loads(payload)
    except (TypeError, ValueError, UnicodeDecodeError):
        return None
    if not (isinstance(name, str) and isinstance(features, str) and _CPU_NAME.fullmatch(name)
            and _CPU_FEATURES.fullmatch(features)):
        return None
    return name, features


def store_host_cpu(description: tuple[str, str]) -> None:
    folder, fingerprint = _private_folder(), cpu_fingerprint()
    if folder is None or fingerprint is None:
        return
    path, key, signature = _host_entry(folder, fingerprint)
    _write(folder, path, encode_entry(key, signature, json.dumps(list(description)).encode()))


def compile_cached(ir_text: str, signature: str, entry: str, source: str | None = None,
                   start_pool: bool = True, opt: int = 3) -> NativeModule:
    """Native code for `ir_text` (compiled at level `opt`, a large module on several cores:
    runtime/parallel_codegen.py), loaded from the cache when an entry for exactly this source
    (the IR, or the graph the driver names), ABI `signature`, level and machine exists and
    defines `entry`; else compiled and stored."""
    native = load_cached(_source(ir_text, source), signature, entry, start_pool, opt)
    if native is None:
        native = load_objects(_compile_and_store(ir_text, signature, source, opt, entry), start_pool)
    native.source_ir = ir_text
    return native


def cached_objects(ir_text: str, signature: str, opt: int = 3) -> list[bytes]:
    """The object code of `ir_text`: the cache's entry for it if a sound one exists (its entry
    points are the caller's to check), else compiled (whole) and stored."""
    return read_cached(_source(ir_text), signature, opt) or _compile_and_store(ir_text, signature, None, opt, "")


def _source(ir_text: str, source: str | None = None) -> str:
    return source or f"ir=sha256:{hashlib.sha256(ir_text.encode()).hexdigest()}"


def _compile_and_store(ir_text: str, signature: str, source: str | None, opt: int, entry: str) -> list[bytes]:
    code = native_code(compile_objects(ir_text, opt, entry, num_threads()))
    folder = _private_folder()
    if folder is not None:
        key = key_text(ir_text, signature, source, opt)
        _write(folder, _entry_path(folder, key), encode_entry(key, signature, pack_objects(code)))
    return code


def cache_info() -> dict:
    """The folder, whether it is used, how many entries it holds, their total size and the bound."""
    folder = cache_dir()
    entries = _entries(folder)
    if not enabled():
        state = "off (GRAPHC_CACHE=0)"
    elif not folder.exists():
        state = "on (folder not created yet)"
    else:
        reason = _unsafe(folder)
        state = "on" if reason is None else f"not used: {reason}"
    return {"folder": str(folder), "state": state, "entries": len(entries),
            "bytes": sum(info.st_size for _, info in entries), "max_bytes": max_bytes()}


def cache_clear() -> int:
    """Delete graphc's entries and its leftover temporary files; returns how many entries went.
    Nothing else in the folder is touched."""
    folder = cache_dir()
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    removed = 0
    for name in names:
        is_entry = _ENTRY_NAME.fullmatch(name) is not None
        if is_entry or name.startswith(TEMPORARY_PREFIX):
            try:
                if stat.S_ISREG(os.lstat(folder / name).st_mode):
                    os.unlink(folder / name)
                    removed += is_entry
            except OSError:
                pass
    return removed
