"""load_state_dict checks every entry before it copies any: a failed load changes nothing."""
import numpy as np
import pytest

import graphc
import graphc.nn as gnn


class Net(gnn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = gnn.Linear(4, 3)
        self.register_buffer("steps", graphc.tensor(0))  # an int64 buffer, loaded like parameters
        self.fc2 = gnn.Linear(3, 2)


def _snapshot(module):
    """Every parameter and buffer, copied, with its bytes."""
    return {key: value.numpy().copy() for key, value in module.state_dict().items()}


def _assert_unchanged(module, before):
    after = _snapshot(module)
    assert list(after) == list(before)
    for key, value in before.items():
        assert after[key].dtype == value.dtype and after[key].tobytes() == value.tobytes(), key


def _valid_state(seed=0):
    """A complete checkpoint whose values differ from a fresh Net's."""
    rng = np.random.default_rng(seed)
    return {key: (rng.standard_normal(v.shape) + 5).astype(v.numpy().dtype) if v.dtype != graphc.int64
            else np.array(7, dtype=np.int64)
            for key, v in Net().state_dict().items()}


@pytest.fixture
def net():
    graphc.manual_seed(0)
    return Net()


def test_object_array_is_rejected_and_nothing_changes(net):
    before = _snapshot(net)
    state = _valid_state()
    state["fc2.weight"] = np.array([[None] * 3] * 2, dtype=object)
    with pytest.raises(RuntimeError) as error:
        net.load_state_dict(state)
    message = str(error.value)
    assert message.startswith("Error(s) in loading state_dict for Net:\n\t"
                              'While copying the parameter named "fc2.weight", whose dimensions in the model are '
                              "graphc.Size([2, 3]) and whose dimensions in the checkpoint are graphc.Size([2, 3]), "
                              "an exception occurred : ")
    assert "dtype object" in message
    _assert_unchanged(net, before)


def test_a_one_dimensional_object_array_of_nones_does_not_load_as_nan():
    g = gnn.Linear(5, 1)
    before = _snapshot(g)
    with pytest.raises(RuntimeError, match='"bias".*dtype object'):
        g.load_state_dict({"weight": np.ones((1, 5)), "bias": np.array([None], dtype=object)})
    _assert_unchanged(g, before)


@pytest.mark.parametrize("bad", [np.array([["a", "b", "c"]] * 2), np.array([[b"a", b"b", b"c"]] * 2),
                                 np.ones((2, 3), dtype=np.complex64), np.zeros((2, 3), dtype="V4")],
                         ids=["str", "bytes", "complex", "void"])
def test_non_numeric_dtypes_after_valid_keys_change_nothing(net, bad):
    before = _snapshot(net)
    state = _valid_state()
    state["fc2.weight"] = bad  # fc1 and steps come first and are valid
    with pytest.raises(RuntimeError, match=f'parameter named "fc2.weight".*dtype {bad.dtype}'):
        net.load_state_dict(state)
    _assert_unchanged(net, before)


def test_shape_mismatch_after_valid_keys_changes_nothing(net):
    before = _snapshot(net)
    state = _valid_state()
    state["fc2.bias"] = np.zeros(3, np.float32)
    with pytest.raises(RuntimeError, match=r"size mismatch for fc2.bias: copying a param with shape "
                                           r"graphc.Size\(\[3\]\) from checkpoint"):
        net.load_state_dict(state, strict=False)
    _assert_unchanged(net, before)


def test_strict_missing_key_changes_nothing(net):
    before = _snapshot(net)
    state = _valid_state()
    del state["fc2.bias"]
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "fc2.bias"'):
        net.load_state_dict(state)
    _assert_unchanged(net, before)
    state["fc2.extra"] = state["fc2.weight"]
    state["fc2.bias"] = np.zeros(2, np.float32)
    with pytest.raises(RuntimeError, match='Unexpected key\\(s\\) in state_dict: "fc2.extra"'):
        net.load_state_dict(state)
    _assert_unchanged(net, before)


def test_every_error_is_reported_at_once(net):
    state = _valid_state()
    state["fc1.weight"] = "not a tensor"
    state["fc1.bias"] = np.array(["a", "b", "c"])
    state["fc2.bias"] = np.zeros(5, np.float32)
    with pytest.raises(RuntimeError) as error:
        net.load_state_dict(state)
    lines = str(error.value).split("\n\t")[1:]
    assert [line.split(",")[0] for line in lines] == [
        'While copying the parameter named "fc1.weight"', 'While copying the parameter named "fc1.bias"',
        "size mismatch for fc2.bias: copying a param with shape graphc.Size([5]) from checkpoint"]


def test_valid_load_copies_everything_in_place_and_converts(net):
    state = _valid_state()
    state["fc1.weight"] = state["fc1.weight"].astype(np.float64)
    state["fc2.bias"] = np.array([1, 0], dtype=np.int32)
    weight = net.fc1.weight
    assert repr(net.load_state_dict(state)) == "<All keys matched successfully>"
    assert net.fc1.weight is weight and weight.dtype == graphc.float32
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), np.asarray(state[key]).astype(value.numpy().dtype), err_msg=key)
    assert net.steps.item() == 7 and net.steps.dtype == graphc.int64


def test_torch_tensor_values_load(net, torch):
    state = {key: torch.from_numpy(np.array(value)) for key, value in _valid_state(1).items()}
    net.load_state_dict(state)
    np.testing.assert_array_equal(net.fc2.weight.detach().numpy(), state["fc2.weight"].numpy())


def test_a_torch_dtype_numpy_lacks_is_an_error_not_a_crash(net, torch):
    before = _snapshot(net)
    state = _valid_state()
    state["fc2.weight"] = torch.zeros(2, 3, dtype=torch.bfloat16)
    with pytest.raises(RuntimeError, match='While copying the parameter named "fc2.weight", whose dimensions'):
        net.load_state_dict(state)
    _assert_unchanged(net, before)
