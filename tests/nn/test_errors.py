"""Errors raised in eager mode name the innermost module, its type and the user's source line,
exactly as traced errors do, and keep their exception type."""
import os

import pytest

import graphc
import graphc.nn as nn

HERE = os.path.basename(__file__)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(4, 4), nn.ReLU())])

    def forward(self, x):
        x = self.fc1(x)
        for block in self.blocks:
            x = block(x)
        return x


def _line_of(text):
    with open(__file__) as f:
        return next(i for i, line in enumerate(f, 1) if text in line)


def test_wrong_feature_count_names_the_linear_and_the_callers_line():
    with pytest.raises(graphc.ShapeError) as eager:
        Net()(graphc.ones(2, 5))
    assert str(eager.value) == (f"in module 'fc1' (Linear) at {HERE}:{_line_of('x = self.fc1(x)')}: "
                                "matmul: shapes [2, 5] and [4, 3] cannot be multiplied (2x5 and 3x4)")
    assert isinstance(eager.value, ValueError)


def test_eager_and_traced_messages_are_the_same():
    net = Net()
    net.blocks[0][0] = nn.Linear(5, 4)  # blocks.0.0 now expects 5 features
    with pytest.raises(graphc.ShapeError) as eager:
        net(graphc.ones(2, 3))
    with pytest.raises(graphc.ShapeError) as traced:
        graphc.trace(net, graphc.ones(2, 3))
    assert str(eager.value).startswith("in module 'blocks.0.0' (Linear) at ")
    assert str(eager.value) == str(traced.value)


def test_a_module_called_alone_is_the_root():
    with pytest.raises(graphc.ShapeError, match=rf"^in module '<root>' \(Linear\) at {HERE}:\d+: matmul"):
        nn.Linear(3, 4)(graphc.ones(2, 5))


def test_check_errors_keep_their_type():
    with pytest.raises(IndexError, match=r"^in module '<root>' \(CrossEntropyLoss\) at .*: Target 7 is out of bounds\."):
        nn.CrossEntropyLoss()(graphc.ones(2, 3), graphc.tensor([0, 7]))


def test_an_unregistered_module_is_named_by_its_type():
    class Wrapper(nn.Module):
        def forward(self, x):
            return nn.Linear(3, 3)(x)  # made in forward, owned by nobody
    with pytest.raises(graphc.ShapeError, match=r"^in module '<Linear>' \(Linear\)"):
        Wrapper()(graphc.ones(1, 2))


def test_the_line_in_a_users_forward_is_named():
    class Scale(nn.Module):
        def forward(self, x):
            return x @ graphc.ones(7, 2)  # the failing op is the user's own
    with pytest.raises(graphc.ShapeError, match=rf"^in module '<root>' \(Scale\) at {HERE}:"
                                                rf"{_line_of('the failing op is the user')}: "):
        Scale()(graphc.ones(1, 3))


def test_only_the_innermost_module_is_named_and_user_errors_pass_unchanged():
    with pytest.raises(graphc.ShapeError) as error:
        nn.Sequential(nn.Sequential(nn.Linear(2, 2)))(graphc.ones(1, 3))
    assert str(error.value).count("in module") == 1 and "'0.0' (Linear)" in str(error.value)

    class Picky(nn.Module):
        def forward(self, x):
            raise ValueError("my own message")
    with pytest.raises(ValueError, match="^my own message$"):
        nn.Sequential(Picky())(graphc.ones(1))


def test_the_call_stack_is_left_clean_after_an_error():
    with pytest.raises(graphc.ShapeError):
        Net()(graphc.ones(2, 5))
    with pytest.raises(graphc.ShapeError, match=r"^in module '<root>' \(Linear\)"):
        nn.Linear(3, 4)(graphc.ones(2, 5))
