"""The host CPU's description (LLVM's name and features) kept in the disk cache under a
fingerprint of /proc/cpuinfo, so a process need not ask the CPU again (each cpuid is a
hypervisor exit in a VM); anything but a sound entry for this very CPU is asked of LLVM."""
import os
import subprocess
import sys

import pytest

from runtime import cache, jit

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
needs_cpuinfo = pytest.mark.skipif(cache.cpu_fingerprint() is None, reason="no /proc/cpuinfo")


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    return tmp_path / "cache"


@needs_cpuinfo
def test_the_description_comes_back_as_llvm_gave_it(folder):
    assert cache.known_host_cpu() is None
    asked = jit._ask_llvm_host_cpu()
    cache.store_host_cpu(asked)
    assert cache.known_host_cpu() == asked == jit._host_cpu()


@needs_cpuinfo
def test_another_cpu_or_a_damaged_entry_is_asked_again(folder, monkeypatch):
    cache.store_host_cpu(jit._ask_llvm_host_cpu())
    fingerprint = cache.cpu_fingerprint()
    monkeypatch.setattr(cache, "cpu_fingerprint", lambda: fingerprint.replace("flags", "flags\t: avx512f"))
    assert cache.known_host_cpu() is None  # another CPU: another entry
    monkeypatch.setattr(cache, "cpu_fingerprint", lambda: fingerprint)
    (path,) = [p for p in folder.iterdir() if p.suffix == ".o"]
    for payload in (b'["skylake", "+avx512f;rm -rf"]', b'["", "+sse2"]', b"[1, 2]", b"not json", b"\xff"):
        path.write_bytes(path.read_bytes().split(b"\n", 2)[0] + b"\n" + path.read_bytes().split(b"\n", 2)[1] + b"\n"
                         + cache._digest_line(payload) + payload)
        assert cache.known_host_cpu() is None, payload


def test_without_cpuinfo_or_cache_llvm_is_asked(folder, monkeypatch):
    monkeypatch.setattr(cache, "cpu_fingerprint", lambda: None)
    cache.store_host_cpu(("skylake", "+sse2"))
    assert cache.known_host_cpu() is None
    monkeypatch.undo()
    monkeypatch.setenv("GRAPHC_CACHE", "0")
    cache.store_host_cpu(("skylake", "+sse2"))
    assert cache.known_host_cpu() is None


@needs_cpuinfo
def test_a_second_process_does_not_ask_llvm(tmp_path):
    script = ("import llvmlite.binding as llvm\n"
              "from runtime import jit\n"
              "if {refuse}:\n"
              "    llvm.get_host_cpu_features = llvm.get_host_cpu_name = lambda: 1 / 0\n"
              "print(jit.machine_description())\n")
    env = dict(os.environ, PYTHONPATH=ROOT, GRAPHC_CACHE_DIR=str(tmp_path / "cache"))
    printed = []
    for refuse in (False, True):
        done = subprocess.run([sys.executable, "-c", script.format(refuse=refuse)], capture_output=True, text=True,
                              env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        printed.append(done.stdout)
    assert printed[0] == printed[1]
