"""Convolutions the direct kernel computes (fuse_convolution), against PyTorch: compiled forward
and backward (the train-mode graph, whose weight gradient keeps the gather), eval-mode conv,
BatchNorm and activation as one node, and compiled train steps."""
import numpy as np
import pytest

import graphc
import graphc.nn as gnn
from parity import assert_matches_torch, assert_train_steps_match_torch

rng = np.random.default_rng(21)


def data(*shape):
    return rng.standard_normal(shape).astype(np.float32)


# (layer keyword arguments, input shape): 1-d and 2-d, odd sizes, batch 1, rows of several vectors
# and of a partial one, height strides, dilation, no bias
DIRECT = [
    (dict(in_channels=3, out_channels=5, kernel_size=3, padding=1), (1, 3, 7, 9)),
    (dict(in_channels=2, out_channels=7, kernel_size=(3, 5), padding=(1, 2), stride=(2, 1)), (2, 2, 9, 37)),
    (dict(in_channels=4, out_channels=9, kernel_size=3, dilation=(2, 3), padding=(2, 3), bias=False), (2, 4, 11, 13)),
    (dict(in_channels=1, out_channels=6, kernel_size=5, padding=2), (3, 1, 28, 28)),
    (dict(in_channels=6, out_channels=16, kernel_size=5), (2, 6, 14, 14)),
    (dict(in_channels=3, out_channels=2, kernel_size=(1, 4), padding="same"), (1, 3, 5, 17)),
]
DIRECT_1D = [
    (dict(in_channels=3, out_channels=4, kernel_size=3, padding=1), (1, 3, 19)),
    (dict(in_channels=2, out_channels=5, kernel_size=5, dilation=2, padding=4, bias=False), (3, 2, 33)),
]


@pytest.mark.parametrize("kwargs, shape", DIRECT, ids=str)
def test_conv2d_then_relu_compiled_forward_and_backward(torch, kwargs, shape):
    model = gnn.Sequential(gnn.Conv2d(**kwargs), gnn.ReLU())
    twin = torch.nn.Sequential(torch.nn.Conv2d(**kwargs), torch.nn.ReLU())
    assert_matches_torch(torch, model, twin, data(*shape))


@pytest.mark.parametrize("kwargs, shape", DIRECT_1D, ids=str)
def test_conv1d_then_tanh_compiled_forward_and_backward(torch, kwargs, shape):
    model = gnn.Sequential(gnn.Conv1d(**kwargs), gnn.Tanh())
    twin = torch.nn.Sequential(torch.nn.Conv1d(**kwargs), torch.nn.Tanh())
    assert_matches_torch(torch, model, twin, data(*shape))


def conv_bn_relu(nn):
    return nn.Sequential(nn.Conv2d(5, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                         nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


def test_eval_conv_batchnorm_relu_matches_pytorch(torch):
    graphc.manual_seed(3)
    model, twin = conv_bn_relu(gnn), conv_bn_relu(torch.nn)
    for bn in (model[1], model[4]):
        bn.running_mean.copy_(graphc.tensor(data(8) * 0.1))
        bn.running_var.copy_(graphc.tensor(np.abs(data(8)) + 0.5))
    twin.load_state_dict({k: torch.from_numpy(np.array(v.numpy())) for k, v in model.state_dict().items()})
    model.eval(), twin.eval()
    x = data(1, 5, 13, 19)
    with graphc.no_grad():
        out = graphc.compile(model)(graphc.tensor(x)).numpy()
    np.testing.assert_allclose(out, twin(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def lenet(nn):
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 10))


def test_lenet_train_steps_match_pytorch(torch):
    graphc.manual_seed(4)
    x, y = data(8, 1, 28, 28), rng.integers(0, 10, 8)
    assert_train_steps_match_torch(torch, lenet(gnn), lenet(torch.nn), x, y, lr=0.05)
