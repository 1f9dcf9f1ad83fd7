"""GRAPHC_DEBUG prints the stages as it compiles: 1 timings ... 5 assembly."""
import graphc
import graphc.nn as nn


def compile_once():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU()).eval()
    with graphc.no_grad():
        graphc.compile(model)(graphc.randn(2, 4))


def test_levels_add_stages_on_stderr_only(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_DEBUG", "1")
    compile_once()
    out, err = capsys.readouterr()
    assert out == ""
    assert "[graphc] compiled forward in" in err and "forward traced in" in err and "%0" not in err
    monkeypatch.setenv("GRAPHC_DEBUG", "3")
    compile_once()
    out, err = capsys.readouterr()
    assert out == ""
    assert "forward traced (" in err and "forward after:fold_transpose_into_matmul (" in err
    assert "planned peak:" in err and "define" not in err
    monkeypatch.setenv("GRAPHC_DEBUG", "5")
    compile_once()
    out, err = capsys.readouterr()
    assert out == ""
    assert "forward llvm (" in err and "define" in err and "forward assembly:" in err


def test_off_by_default(monkeypatch, capsys):
    monkeypatch.delenv("GRAPHC_DEBUG", raising=False)
    compile_once()
    assert capsys.readouterr() == ("", "")
