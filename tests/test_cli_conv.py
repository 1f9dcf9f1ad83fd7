"""`graphc dump` on a conv net: every stage prints, the window ops and their tables show in the
graphs, the conv bias is fused into its matmul, and the kernels are named after their modules."""
import json
import textwrap

import pytest

from graphc.cli import STAGES, main

MODEL = textwrap.dedent("""\
    import graphc.nn as nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.avg = nn.AdaptiveAvgPool2d(3)
            self.fc = nn.Linear(36, 3)

        def forward(self, x):
            return self.fc(self.avg(self.pool(self.conv(x).relu())).flatten(1))
""")


@pytest.fixture
def target(tmp_path):
    path = tmp_path / "convnet.py"
    path.write_text(MODEL)
    return f"{path}:Net"


def dump(capsys, target, *argv):
    status = main(["dump", target, "--input", "2x1x8x8", *argv])
    out, err = capsys.readouterr()
    assert status == 0 and err == "", err
    return out


@pytest.mark.parametrize("stage", [s for s in STAGES if s != "all"] + ["after:fuse_elementwise"])
def test_every_stage_dumps_a_conv_net(capsys, target, stage):
    out = dump(capsys, target, "--stage", stage)
    assert out.strip()
    if stage in ("traced", "optimized", "joint", "kernels"):
        assert "= window_gather" in out and "{pad_value=-inf}" in out and "constant <i64[8, 3] literal>" in out
    if stage in ("joint", "backward"):
        assert "= window_scatter" in out
    if stage == "kernels":
        assert "matmul_epilogue" in out  # the conv bias, added before each store of the product
    if stage == "llvm":
        assert "window_gather_conv" in out and "window_gather_pool" in out


def test_all_stages_to_files_and_json(capsys, target, tmp_path):
    dump(capsys, target, "--stage", "all", "--out", str(tmp_path / "stages"))
    assert len(list((tmp_path / "stages").iterdir())) >= len(STAGES) - 1
    kernels = json.loads(dump(capsys, target, "--stage", "kernels", "--format", "json"))
    gathers = [k for k in kernels if "window_gather" in k["name"]]
    assert {tuple(k["module_paths"]) for k in gathers} == {("conv",), ("pool",), ("avg",)}
