"""One compile cache per test session: tests share compiled graphs but never the user's cache."""
import os
import tempfile

os.environ.setdefault("GRAPHC_CACHE_DIR", tempfile.mkdtemp(prefix="graphc-test-cache-"))
