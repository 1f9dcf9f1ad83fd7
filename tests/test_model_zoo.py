"""Whole models from the tutorials and model zoos, written once and built on graphc and on PyTorch:
eager and compiled, forward and backward, against PyTorch with identical weights.

Each builder takes the library (`graphc` or `torch`) and returns a model; both libraries run the
same code, so any difference is graphc's. Tolerances are float32's: outputs rtol 2e-4 (atol 2e-5
scaled to the output), gradients rtol 1e-3.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import graphc

torch = pytest.importorskip("torch")


# --- the models ---------------------------------------------------------------------------------
def alexnet(lib, classes: int = 10):
    nn = lib.nn

    class AlexNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 16, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(16, 32, kernel_size=5, padding=2), nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(32, 32, kernel_size=3, padding=1), nn.ReLU(inplace=True))
            self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
            self.classifier = nn.Sequential(
                nn.Dropout(p=0.5), nn.Linear(32 * 6 * 6, 64), nn.ReLU(inplace=True),
                nn.Dropout(p=0.5), nn.Linear(64, 64), nn.ReLU(inplace=True), nn.Linear(64, classes))

        def forward(self, x):
            x = self.avgpool(self.features(x))
            return self.classifier(lib.flatten(x, 1))
    return AlexNet()


def lenet(lib):
    nn, F = lib.nn, lib.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = x.view(x.size(0), -1)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))
    return Net()


def resnet(lib, preact: bool = False):
    nn, F = lib.nn, lib.nn.functional

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cin if preact else cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = nn.Sequential()  # the identity, as model zoos write it
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            if preact:
                out = F.relu(self.bn1(x))
                shortcut = self.shortcut(out) if len(self.shortcut) else x
                out = self.conv1(out)
                out = self.conv2(F.relu(self.bn2(out)))
                out += shortcut
                return out
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += self.shortcut(x)
            return F.relu(out)

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.layer1 = Block(8, 8, 1)
            self.layer2 = Block(8, 16, 2)
            self.linear = nn.Linear(16, 10)

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.layer2(self.layer1(out))
            out = F.adaptive_avg_pool2d(out, 1)
            return self.linear(out.view(out.size(0), -1))
    return ResNet()


def mobilenet_block(lib):
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU(),  # depthwise
        nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),  # pointwise
        nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=4), nn.ReLU())  # grouped


def densenet_block(lib):
    nn, F = lib.nn, lib.nn.functional

    class Dense(nn.Module):
        def __init__(self, cin, growth):
            super().__init__()
            self.bn = nn.BatchNorm2d(cin)
            self.conv = nn.Conv2d(cin, growth, 3, padding=1, bias=False)

        def forward(self, x):
            return lib.cat([self.conv(F.relu(self.bn(x))), x], 1)
    return nn.Sequential(Dense(4, 4), Dense(8, 4), nn.AvgPool2d(2))


def senet_block(lib):
    nn, F = lib.nn, lib.nn.functional

    class SE(nn.Module):
        def __init__(self, channels, reduction=4):
            super().__init__()
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)
            self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
            self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

        def forward(self, x):
            out = self.conv(x)
            w = F.avg_pool2d(out, out.size(2))
            w = lib.sigmoid(self.fc2(F.relu(self.fc1(w))))
            return F.relu(out * w + x)
    return SE(8)


def shufflenet_block(lib):
    nn, F = lib.nn, lib.nn.functional

    class Shuffle(nn.Module):
        def __init__(self, groups):
            super().__init__()
            self.groups = groups

        def forward(self, x):
            n, c, h, w = x.size()
            g = self.groups
            return x.view(n, g, c // g, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)

    class Unit(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(8, 8, 1, groups=2, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.shuffle = Shuffle(2)
            self.conv2 = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
            self.conv3 = nn.Conv2d(8, 8, 1, groups=2, bias=False)

        def forward(self, x):
            out = self.shuffle(F.relu(self.bn1(self.conv1(x))))
            out = self.conv3(self.conv2(out))
            return F.relu(out + x)
    return Unit()


def layer_chooser(lib):
    nn = lib.nn

    class Chooser(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleDict({"conv": nn.Conv2d(3, 4, 3, padding=1), "pool": nn.MaxPool2d(2)})
            self.activations = nn.ModuleDict([["relu", nn.ReLU()], ["prelu", nn.PReLU()]])

        def forward(self, x, choice, act="relu"):
            return self.activations[act](self.layers[choice](x))
    return Chooser()


# --- harness --------------------------------------------------------------------------------------
def _pair(builder, *args):
    graphc.manual_seed(0)
    mine = builder(graphc, *args)
    theirs = builder(torch, *args)
    theirs.load_state_dict({k: torch.from_numpy(np.array(v.detach().numpy())) for k, v in mine.state_dict().items()})
    return mine, theirs


def _input(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _close(a, b, rtol=2e-4, what=""):
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=2e-5 * max(1.0, float(np.abs(b).max(initial=0))), err_msg=what)


def _forward_backward(model, lib, x, *static):
    t = lib.tensor(x, requires_grad=True)
    out = model(t, *static)
    (out * lib.tensor(_input(tuple(out.shape), 9))).sum().backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    return out.detach().numpy(), t.grad.numpy(), {n: g.numpy() for n, g in grads.items()}


ZOO = {
    "mobilenet": (mobilenet_block, (2, 8, 8, 8)),
    "densenet": (densenet_block, (2, 4, 8, 8)),
    "senet": (senet_block, (2, 8, 6, 6)),
    "shufflenet": (shufflenet_block, (2, 8, 6, 6)),
    "resnet": (resnet, (2, 3, 8, 8)),
    "preact_resnet": (lambda lib: resnet(lib, preact=True), (2, 3, 8, 8)),
}


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_forward_backward_eager_and_compiled(name, mode):
    builder, shape = ZOO[name]
    mine, theirs = _pair(builder)
    x = _input(shape)
    expected = _forward_backward(getattr(theirs, mode)(), torch, x)
    for model in (getattr(mine, mode)(), graphc.compile(mine)):
        for p in mine.parameters():
            p.grad = None
        if mode == "train":  # running statistics move in train mode: start each run from the same ones
            mine.load_state_dict({k: v for k, v in _pair(builder)[0].state_dict().items() if "running" in k
                                  or "num_batches" in k}, strict=False)
        out, dx, grads = _forward_backward(model, graphc, x)
        _close(out, expected[0], what=f"{name} output")
        _close(dx, expected[1], rtol=1e-3, what=f"{name} input gradient")
        assert grads.keys() == expected[2].keys()
        for key in grads:
            _close(grads[key], expected[2][key], rtol=1e-3, what=f"{name} {key}")


def test_alexnet_eval_eager_and_compiled():
    mine, theirs = _pair(alexnet)
    x = _input((2, 3, 128, 128))
    with torch.no_grad():
        expected = theirs.eval()(torch.tensor(x)).numpy()
    mine.eval()
    _close(mine(graphc.tensor(x)).detach().numpy(), expected, what="eager")
    with graphc.no_grad():
        _close(graphc.compile(mine)(graphc.tensor(x)).numpy(), expected, what="compiled")


def _train_steps_match(builder, steps: int, shape: tuple, lr: float, seed: int):
    """`steps` compiled SGD-momentum train steps against PyTorch's: the losses, then the whole
    state_dict (running statistics included) after them."""
    mine, theirs = _pair(builder)
    rng = np.random.default_rng(seed)
    optimizer = graphc.optim.SGD(mine.parameters(), lr=lr, momentum=0.9)
    reference = torch.optim.SGD(theirs.parameters(), lr=lr, momentum=0.9)
    step = graphc.compile_train_step(mine, graphc.nn.CrossEntropyLoss(), optimizer)
    for _ in range(steps):
        x, y = rng.standard_normal(shape).astype(np.float32), rng.integers(0, 10, shape[0])
        loss = step(graphc.tensor(x), graphc.tensor(y)).item()
        reference.zero_grad()
        expected = torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
        expected.backward()
        reference.step()
        assert loss == pytest.approx(expected.item(), rel=1e-4)
    for (name, value), (_, other) in zip(mine.state_dict().items(), theirs.state_dict().items()):
        _close(value.numpy(), other.numpy(), rtol=1e-3, what=name)
    return mine, theirs


def test_lenet_five_sgd_momentum_steps_match_pytorch():
    _train_steps_match(lenet, 5, (8, 1, 28, 28), lr=0.05, seed=1)


def test_resnet_three_train_steps_then_eval_match_pytorch():
    mine, theirs = _train_steps_match(resnet, 3, (4, 3, 8, 8), lr=0.1, seed=2)
    x = _input((4, 3, 8, 8), 3)
    mine.eval(), theirs.eval()
    with torch.no_grad():
        expected = theirs(torch.tensor(x)).numpy()
    with graphc.no_grad():
        _close(graphc.compile(mine)(graphc.tensor(x)).numpy(), expected, what="compiled eval")
        _close(mine(graphc.tensor(x)).numpy(), expected, what="eager eval")


@pytest.mark.parametrize("choice,act", [("conv", "relu"), ("conv", "prelu"), ("pool", "relu")])
def test_layers_chosen_by_string_arguments(choice, act):
    mine, theirs = _pair(layer_chooser)
    x = _input((2, 3, 6, 6))
    expected = _forward_backward(theirs, torch, x, choice, act)
    compiled = graphc.compile(mine)
    for model in (mine, compiled):
        for p in mine.parameters():
            p.grad = None
        out, dx, grads = _forward_backward(model, graphc, x, choice, act)
        _close(out, expected[0])
        _close(dx, expected[1], rtol=1e-3)
        for key in expected[2]:
            _close(grads[key], expected[2][key], rtol=1e-3, what=key)
    assert compiled(graphc.tensor(x), "conv", act=act).shape == (2, 4, 6, 6)


DUMPED = """\
import graphc
from test_model_zoo import alexnet, lenet, resnet


def make(name="lenet"):
    return {"alexnet": alexnet, "lenet": lenet, "resnet": resnet}[name](graphc)
"""


@pytest.mark.parametrize("name,shape", [("alexnet", "2x3x128x128"), ("lenet", "2x1x28x28"), ("resnet", "2x3x8x8")])
def test_dump_every_stage(name, shape, tmp_path, monkeypatch, capsys):
    """`graphc dump --stage all` writes every stage of each model, its eval forward and its train step."""
    from graphc.cli import main
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    (tmp_path / "zoo.py").write_text(DUMPED)
    target = f"{tmp_path / 'zoo.py'}:make"
    for extra, folder in ((["--eval"], "eval"), (["--input", "2:int64", "--loss", "CrossEntropyLoss", "--optim", "SGD"],
                                                 "train")):
        out = tmp_path / folder
        assert main(["dump", target, "--arg", f"name={name}", "--input", shape, "--stage", "all", "--out", str(out),
                     *extra]) == 0
        files = {f.name: f.read_text() for f in out.iterdir()}
        assert len(files) >= 10 and all(text.strip() for text in files.values()), sorted(files)
        assert any("Conv2d" in text for text in files.values())
        if folder == "train":  # the whole step: its update writes every parameter
            step = next(text for name, text in files.items() if name.endswith("train-step.txt"))
            assert "(SGD)" in step and "update" in step
