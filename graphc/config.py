"""The GRAPHC_* environment variables: what each means, and the readers every part of graphc and
runtime uses, so each variable is parsed in one place.

A value that cannot be used warns (a RuntimeWarning, once per variable and value) and the default
applies. A set GRAPHC_* variable graphc does not know, such as the typo GRAPHC_DEBGU, warns once,
at the first read of any variable. An empty value counts as unset.
"""
from __future__ import annotations

import difflib
import os
import sys
import warnings

VARIABLES = {
    "GRAPHC_DEBUG": "debug output: 1 timings, 2 traced graph, 3 graph after each pass, 4 LLVM IR, 5 assembly",
    "GRAPHC_NUM_THREADS": "threads a large kernel splits across (default and most: the CPUs this process may use)",
    "GRAPHC_CACHE": "0 switches the on-disk cache of compiled object code off",
    "GRAPHC_CACHE_DIR": "the compile cache's folder (default: $XDG_CACHE_HOME/graphc or ~/.cache/graphc)",
    "GRAPHC_CACHE_MAX_BYTES": "the size the compile cache's folder is kept within (default 1 GiB)",
    "GRAPHC_LINKER": "the linker that makes compiled code a shared library loaded with dlopen (default: ld on PATH; none: MCJIT loads object code)",
    "GRAPHC_LOG": "comma-separated log topics printed on stderr: recompiles (each new specialisation and why)",
}

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")

_warned: set[tuple[str, str]] = set()  # (variable, value) pairs already reported
_names_checked = False


def reset_warnings() -> None:
    """Forget which values were reported, so they warn again (for tests)."""
    global _names_checked
    _warned.clear()
    _names_checked = False


def _warn_once(name: str, value: str, message: str) -> None:
    if (name, value) in _warned:
        return
    _warned.add((name, value))
    frame, level = sys._getframe(), 1  # point the warning at the code that read the variable
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, RuntimeWarning, stacklevel=level)


def _check_names() -> None:
    """Warn about set GRAPHC_* variables that are not in VARIABLES (typos read as nothing)."""
    global _names_checked
    if _names_checked:
        return
    _names_checked = True
    for name in sorted(os.environ):
        if name.startswith("GRAPHC_") and name not in VARIABLES:
            close = difflib.get_close_matches(name, VARIABLES, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            _warn_once(name, "", f"{name} is not a graphc environment variable and is ignored; {hint}"
                                 f"known: {', '.join(VARIABLES)}")


def env_str(name: str, default: str | None = None) -> str | None:
    """The variable's text, or `default` when it is unset or empty."""
    _check_names()
    text = os.environ.get(name, "")
    return text if text else default


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    """The variable as an integer; `default`, with a warning, when it is not one or is below `minimum`."""
    text = env_str(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        _warn_once(name, text, f"{name}={text!r} is not an integer; using {default}")
        return default
    if minimum is not None and value < minimum:
        _warn_once(name, text, f"{name}={value} is less than {minimum}; using {default}")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    """The variable as a switch (1/0, true/false, yes/no, on/off); `default`, with a warning, otherwise."""
    text = env_str(name)
    if text is None:
        return default
    if text.strip().lower() in _TRUE + _FALSE:
        return text.strip().lower() in _TRUE
    _warn_once(name, text, f"{name}={text!r} is not a switch (1 or 0); using {int(default)}")
    return default


LOG_TOPICS = ("recompiles",)


def log_topics() -> frozenset[str]:
    """GRAPHC_LOG's topics; an unknown one warns and is ignored."""
    text = env_str("GRAPHC_LOG", "")
    topics = {t.strip() for t in text.split(",") if t.strip()}
    for topic in sorted(topics - set(LOG_TOPICS)):
        _warn_once("GRAPHC_LOG", text, f"GRAPHC_LOG names an unknown topic {topic!r}; known: {', '.join(LOG_TOPICS)}")
    return frozenset(topics & set(LOG_TOPICS))


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def num_threads() -> int:
    """GRAPHC_NUM_THREADS, at most the usable CPUs (more threads than CPUs only contend); default
    the usable CPUs. The lowering splits kernels and the runtime's pool starts workers by it."""
    usable = usable_cpus()
    wanted = env_int("GRAPHC_NUM_THREADS", usable, minimum=1)
    if wanted > usable:
        _warn_once("GRAPHC_NUM_THREADS", str(wanted), f"GRAPHC_NUM_THREADS={wanted} is more than the {usable} "
                                                      f"CPUs this process may use; using {usable}")
        return usable
    return wanted

