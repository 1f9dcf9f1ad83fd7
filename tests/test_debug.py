"""GRAPHC_DEBUG prints the stages as it compiles: 1 timings ... 5 assembly."""
import graphc
import graphc.nn as nn


def compile_once():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU()).eval()
    with graphc.no_grad():
        graphc.compile(model)(graphc.randn(2, 4))


def test_levels_add_stages(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_DEBUG", "1")
    compile_once()
    out = capsys.readouterr().out
    assert "[graphc] compiled forward (" in out and "ms" in out and "traced" not in out
    monkeypatch.setenv("GRAPHC_DEBUG", "3")
    compile_once()
    out = capsys.readouterr().out
    assert "forward traced:" in out and "after fold_transpose_into_matmul" in out and "define" not in out
    monkeypatch.setenv("GRAPHC_DEBUG", "5")
    compile_once()
    out = capsys.readouterr().out
    assert "LLVM IR of forward" in out and "define" in out and "assembly of forward" in out


def test_off_by_default(monkeypatch, capsys):
    monkeypatch.delenv("GRAPHC_DEBUG", raising=False)
    compile_once()
    assert capsys.readouterr().out == ""
