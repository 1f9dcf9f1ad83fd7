"""`graphc dump` on a conv net: every stage prints, the window ops and their tables show in the
graphs, the conv bias is fused into its matmul, max pools are one kernel reading their windows in
place, and the kernels are named after their modules."""
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
    if stage in ("traced", "optimized", "joint", "kernels"):  # the max pool reads its windows in place
        assert "= pool %" in out and "reduce='max'" in out and "{pad_value=-inf}" not in out
        assert "= window_gather" in out  # the adaptive pool's bins
    if stage in ("traced", "optimized", "joint"):
        assert "constant <i64[8, 3] literal>" in out  # the conv's table (the direct kernel reads x itself)
    if stage in ("joint", "backward"):
        assert "= pool_backward" in out and "= window_scatter" in out
    if stage == "kernels":  # the conv, its bias and the ReLU after it: one kernel, the body applied to its tiles
        assert "= convolution %0, %2, %4  {body=relu(add(in0, in1))" in out
        assert "# conv+<root> (Conv2d+Net)" in out  # the ReLU is the root module's
        assert "matmul_epilogue" in out  # the Linear layer's bias
    if stage == "llvm":
        assert "convolution_conv" in out and "pool_pool" in out and "window_gather_pool" not in out


def test_all_stages_to_files_and_json(capsys, target, tmp_path):
    dump(capsys, target, "--stage", "all", "--out", str(tmp_path / "stages"))
    assert len(list((tmp_path / "stages").iterdir())) >= len(STAGES) - 1
    kernels = json.loads(dump(capsys, target, "--stage", "kernels", "--format", "json"))
    gathers = [k for k in kernels if "window_gather" in k["name"]]
    assert [k["module_paths"] for k in gathers] == [["avg"]]
    assert [(k["module_paths"], k["template"]) for k in kernels if "_pool_" in k["name"]] == [(["pool"], "index")]
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


LENET = textwrap.dedent("""\
    import graphc.nn as nn


    def LeNet():
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                             nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                             nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
""")


def test_lenet_kernels_pool_in_place(capsys, tmp_path):
    """The benchmark's W2 net in eval mode: conv+ReLU, then one pool kernel reading the conv's
    output, twice; no window array is gathered and no reduction runs apart."""
    path = tmp_path / "lenet.py"
    path.write_text(LENET)
    status = main(["dump", f"{path}:LeNet", "--input", "64x1x28x28", "--eval", "--stage", "kernels"])
    out, err = capsys.readouterr()
    assert status == 0 and err == "", err
    kernels = [line.split()[1] for line in out.splitlines() if line.startswith("    ") and " nodes %" in line]
    assert kernels[:4] == ["k15_convolution_0_1", "k16_pool_2", "k19_convolution_3_4", "k20_pool_5"]
    pools = [line for line in out.splitlines() if "= pool %" in line]
    assert [line.split(" = ")[0].split(": ")[1] for line in pools] == ["f32[64,6,14,14]", "f32[64,16,5,5]"]
    assert all("{dilation=(1, 1), kernel=(2, 2), padding=((0, 0), (0, 0)), reduce='max', stride=(2, 2)}" in line
               for line in pools)
    assert not any(op in out for op in ("= window_gather", "= amax"))
