"""Run a module of this package in a fresh Python process and read the JSON it prints."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Mapping

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_module(module: str, *args: str, env: Mapping[str, str] | None = None) -> dict:
    """`python -m benchmarks.<module> args...` under `env` (default: this process's), from the
    repository's root; its stdout's JSON, or a RuntimeError with its stderr."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (ROOT, env.get("PYTHONPATH"))))
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=900)
    if done.returncode:
        raise RuntimeError(f"python -m benchmarks.{module} {' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout)
