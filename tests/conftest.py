"""Shared by every test: one compile cache per session (tests share compiled graphs but never the
user's cache) and the `torch` fixture, PyTorch as the oracle."""
import os
import tempfile

import pytest

os.environ.setdefault("GRAPHC_CACHE_DIR", tempfile.mkdtemp(prefix="graphc-test-cache-"))


@pytest.fixture
def torch():
    """PyTorch, the oracle; a test that asks for it skips cleanly when it is not installed."""
    return pytest.importorskip("torch")
