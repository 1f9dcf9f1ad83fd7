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
        assert "= window_gather" in out and "{pad_value=-inf}" in out
    if stage in ("traced", "optimized", "joint"):
        assert "constant <i64[8, 3] literal>" in out  # the conv's table (the direct kernel reads x itself)
    if stage in ("joint", "backward"):
        assert "= window_scatter" in out
    if stage == "kernels":  # the conv, its bias and the ReLU after it: one kernel, the body applied to its tiles
        assert "= convolution %0, %2, %4  {body=relu(add(in0, in1))" in out
        assert "# conv+<root> (Conv2d+Net)" in out  # the ReLU is the root module's
        assert "matmul_epilogue" in out  # the Linear layer's bias
    if stage == "llvm":
        assert "convolution_conv" in out and "window_gather_pool" in out


def test_all_stages_to_files_and_json(capsys, target, tmp_path):
    dump(capsys, target, "--stage", "all", "--out", str(tmp_path / "stages"))
    assert len(list((tmp_path / "stages").iterdir())) >= len(STAGES) - 1
    kernels = json.loads(dump(capsys, target, "--stage", "kernels", "--format", "json"))
    gathers = [k for k in kernels if "window_gather" in k["name"]]
    assert {tuple(k["module_paths"]) for k in gathers} == {("pool",), ("avg",)}
    assert [k["module_paths"] for k in kernels if "convolution" in k["name"]] == [["conv", ""]]  # the root module's path is ''


W4 = textwrap.dedent("""\
    import graphc.nn as nn


    def W4():
        return nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                             nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
""")


def test_w4_kernels_put_batchnorm_and_relu_in_the_convolutions(capsys, tmp_path):
    """The benchmark's W4 net in eval mode: each conv, its folded BatchNorm and its ReLU are one
    kernel; no im2col gather, no permute and no separate ReLU remain."""
    path = tmp_path / "w4.py"
    path.write_text(W4)
    status = main(["dump", f"{path}:W4", "--input", "16x16x32x32", "--eval", "--stage", "kernels"])
    out, err = capsys.readouterr()
    assert status == 0 and err == "", err
    convs = [line for line in out.splitlines() if "= convolution" in line]
    assert len(convs) == 2 and all("{body=relu(add(in0, in1))" in line for line in convs)
    assert [line.split("# ")[1].split("  ")[0] for line in convs] == [
        "0+1+2 (Conv2d+BatchNorm2d+ReLU)", "3+4+5 (Conv2d+BatchNorm2d+ReLU)"]
    assert not any(op in out for op in ("= window_gather", "= permute", "= relu"))
