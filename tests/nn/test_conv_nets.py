"""Whole conv nets against PyTorch: LeNet-5 at batch 64 (compiled forward, compiled SGD-momentum
train steps), a net whose train step runs every direct gradient kernel (padded, dilated and
row-strided convolutions, padded ceil-mode max and average pools, a 1-d branch) and an
AlexNet-shaped net in eval mode (11x11 stride-4 conv, 3/2 max pools, adaptive
average pool to 6x6 from a smaller map, linears; Identity where AlexNet has Dropout)."""
import numpy as np

import graphc
import graphc.nn as gnn
from parity import assert_matches_torch, assert_train_steps_match_torch

rng = np.random.default_rng(2)


def lenet(nn):
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def alexnet_shaped(nn, classes=10):
    features = nn.Sequential(
        nn.Conv2d(3, 16, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(32, 48, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(48, 32, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
    classifier = nn.Sequential(nn.Identity(), nn.Linear(32 * 6 * 6, 256), nn.ReLU(inplace=True), nn.Identity(),
                               nn.Linear(256, 256), nn.ReLU(inplace=True), nn.Linear(256, classes))
    return nn.Sequential(features, nn.AdaptiveAvgPool2d((6, 6)), nn.Flatten(), classifier)


def images(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def test_lenet_batch_64_matches_pytorch_eager_and_compiled(torch):
    assert_matches_torch(torch, lenet(gnn), lenet(torch.nn), images(64, 1, 28, 28))


def test_lenet_sgd_momentum_train_steps_match_pytorch(torch):
    x, y = images(64, 1, 28, 28), rng.integers(0, 10, 64)
    assert_train_steps_match_torch(torch, lenet(gnn), lenet(torch.nn), x, y, steps=4, lr=0.05, momentum=0.9)


def gradient_kernels_net(nn):
    """Convolutions whose weight and input gradients are direct kernels (stride 1 along the width),
    between pools read in place; the input gradient of the row-strided one stays col2im."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        nn.Conv2d(8, 12, (3, 2), dilation=(1, 2), padding=(2, 1)), nn.Tanh(),
        nn.Conv2d(12, 12, 3, stride=(2, 1), padding=1), nn.ReLU(),
        nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False), nn.Flatten(1, 2),
        nn.Conv1d(12 * 3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(), nn.Linear(6 * 4, 5))


def test_gradient_kernels_net_train_steps_match_pytorch(torch):
    x, y = images(4, 3, 17, 35), rng.integers(0, 5, 4)
    assert_train_steps_match_torch(torch, gradient_kernels_net(gnn), gradient_kernels_net(torch.nn), x, y, steps=3,
                                   lr=0.05, momentum=0.9)


def test_alexnet_shaped_net_in_eval_matches_pytorch(torch):
    model, twin = alexnet_shaped(gnn).eval(), alexnet_shaped(torch.nn).eval()
    twin.load_state_dict({k: torch.from_numpy(np.array(v.numpy())) for k, v in model.state_dict().items()})
    x = images(2, 3, 128, 128)
    expected = twin(torch.tensor(x)).detach().numpy()
    with graphc.no_grad():
        np.testing.assert_allclose(model(graphc.tensor(x)).numpy(), expected, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(graphc.compile(model)(graphc.tensor(x)).numpy(), expected, rtol=1e-4, atol=1e-5)
    assert repr(model) == repr(twin)
