"""GRAPHC_* variables are read in one place: bad values warn once and fall back, typos warn."""
import os
import warnings

import pytest

from graphc import config
from graphc.debug import debug_level
from graphc.lower import threads


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    """No GRAPHC_* variable but the test's own, and no memory of earlier warnings."""
    for name in list(os.environ):
        if name.startswith("GRAPHC_"):
            monkeypatch.delenv(name)
    config.reset_warnings()
    yield
    config.reset_warnings()


@pytest.fixture
def two_cpus(monkeypatch):
    monkeypatch.setattr(config, "usable_cpus", lambda: 2)


def no_warnings(read):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return read()


def test_every_variable_has_a_meaning():
    assert all(name.startswith("GRAPHC_") and meaning for name, meaning in config.VARIABLES.items())
    assert {"GRAPHC_DEBUG", "GRAPHC_NUM_THREADS", "GRAPHC_CACHE", "GRAPHC_CACHE_DIR", "GRAPHC_CACHE_MAX_BYTES",
            "GRAPHC_LOG"} <= set(config.VARIABLES)


def test_unparsable_debug_level_warns_and_is_off(monkeypatch):
    monkeypatch.setenv("GRAPHC_DEBUG", "abc")
    with pytest.warns(RuntimeWarning, match=r"^GRAPHC_DEBUG='abc' is not an integer; using 0$"):
        assert debug_level() == 0


def test_a_bad_value_warns_once_per_value(monkeypatch):
    monkeypatch.setenv("GRAPHC_DEBUG", "abc")
    with pytest.warns(RuntimeWarning):
        debug_level()
    assert no_warnings(debug_level) == 0
    monkeypatch.setenv("GRAPHC_DEBUG", "-1")
    with pytest.warns(RuntimeWarning, match=r"GRAPHC_DEBUG=-1 is less than 0; using 0"):
        assert debug_level() == 0


def test_valid_and_unset_values_are_quiet(monkeypatch):
    assert no_warnings(debug_level) == 0
    monkeypatch.setenv("GRAPHC_DEBUG", "3")
    assert no_warnings(debug_level) == 3
    monkeypatch.setenv("GRAPHC_DEBUG", "")
    assert no_warnings(debug_level) == 0


def test_too_many_threads_are_capped_at_the_usable_cpus(monkeypatch, two_cpus):
    monkeypatch.setenv("GRAPHC_NUM_THREADS", "1000")
    with pytest.warns(RuntimeWarning, match=r"^GRAPHC_NUM_THREADS=1000 is more than the 2 CPUs this process "
                                            r"may use; using 2$"):
        assert config.num_threads() == 2


@pytest.mark.parametrize("text, message", [("0", "GRAPHC_NUM_THREADS=0 is less than 1; using 2"),
                                           ("-3", "GRAPHC_NUM_THREADS=-3 is less than 1; using 2"),
                                           ("x", "GRAPHC_NUM_THREADS='x' is not an integer; using 2"),
                                           ("2.5", "GRAPHC_NUM_THREADS='2.5' is not an integer; using 2")])
def test_bad_thread_counts_warn_and_use_the_usable_cpus(monkeypatch, two_cpus, text, message):
    monkeypatch.setenv("GRAPHC_NUM_THREADS", text)
    with pytest.warns(RuntimeWarning, match=f"^{message}$"):
        assert config.num_threads() == 2


def test_thread_counts_within_the_cpus_are_kept(monkeypatch, two_cpus):
    assert no_warnings(config.num_threads) == 2
    monkeypatch.setenv("GRAPHC_NUM_THREADS", "1")
    assert no_warnings(config.num_threads) == 1
    monkeypatch.setenv("GRAPHC_NUM_THREADS", "2")
    assert no_warnings(config.num_threads) == 2


def test_lowering_and_runtime_read_the_same_thread_count():
    from runtime import pool
    assert threads.num_threads is config.num_threads and pool.num_threads is config.num_threads


def test_usable_cpus_follow_the_affinity_mask():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert config.usable_cpus() == expected


def test_an_unknown_graphc_variable_warns_once(monkeypatch):
    monkeypatch.setenv("GRAPHC_DEBGU", "3")
    with pytest.warns(RuntimeWarning, match=r"^GRAPHC_DEBGU is not a graphc environment variable and is "
                                            r"ignored; did you mean GRAPHC_DEBUG\? known: GRAPHC_DEBUG, "):
        assert debug_level() == 0
    assert no_warnings(debug_level) == 0


def test_an_unknown_variable_unlike_any_known_one_warns_without_a_guess(monkeypatch):
    monkeypatch.setenv("GRAPHC_ZZZZZZZZZZZZZZ", "1")
    with pytest.warns(RuntimeWarning, match=r"GRAPHC_ZZZZZZZZZZZZZZ is not a graphc environment variable and is "
                                            r"ignored; known: ") as record:
        config.env_str("GRAPHC_CACHE_DIR")
    assert "did you mean" not in str(record[0].message)


@pytest.mark.parametrize("text, value", [("1", True), ("0", False), ("yes", True), ("Off", False), ("TRUE", True)])
def test_switches(monkeypatch, text, value):
    monkeypatch.setenv("GRAPHC_CACHE", text)
    assert no_warnings(lambda: config.env_bool("GRAPHC_CACHE", not value)) is value


def test_a_bad_switch_warns_and_keeps_the_default(monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE", "maybe")
    with pytest.warns(RuntimeWarning, match=r"^GRAPHC_CACHE='maybe' is not a switch \(1 or 0\); using 1$"):
        assert config.env_bool("GRAPHC_CACHE", True) is True
