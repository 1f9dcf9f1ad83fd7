"""Upsample / interpolate, PixelShuffle / PixelUnshuffle and Unflatten against PyTorch: reprs,
values and gradients, eager and compiled."""
import numpy as np
import pytest

import graphc
import graphc.nn as gnn
import graphc.nn.functional as GF


def modules(nn):
    return [nn.Upsample(scale_factor=2), nn.Upsample(size=(7, 5)), nn.Upsample(scale_factor=1.7),
            nn.Upsample(scale_factor=(0.5, 3)), nn.Upsample(size=(9, 2), mode="bilinear"),
            nn.Upsample(scale_factor=2, mode="bilinear"), nn.Upsample(scale_factor=1.5, mode="bilinear"),
            nn.Upsample(size=(8, 11), mode="bilinear", align_corners=True),
            nn.Upsample(scale_factor=(2, 0.6), mode="bilinear", align_corners=True),
            nn.Upsample(size=(1, 1), mode="bilinear", align_corners=True),
            nn.Upsample(scale_factor=1.3, mode="bilinear", recompute_scale_factor=True),
            nn.PixelShuffle(2), nn.PixelUnshuffle(2), nn.Unflatten(1, (2, 2)), nn.Unflatten(-1, (2, 3))]


IDS = [repr(m) for m in modules(gnn)]


def test_reprs_match_pytorch(torch):
    assert [repr(m) for m in modules(gnn)] == [repr(m) for m in modules(torch.nn)]


def _input():
    return np.random.default_rng(0).standard_normal((2, 4, 4, 6)).astype("float32")


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("index", range(len(IDS)), ids=IDS)
def test_forward_and_backward_match_pytorch(torch, index, compiled):
    x = _input()
    tx = torch.tensor(x, requires_grad=True)
    expected = modules(torch.nn)[index](tx)
    grad = np.random.default_rng(1).standard_normal(tuple(expected.shape)).astype("float32")
    expected.backward(torch.tensor(grad))
    module = modules(gnn)[index]
    run = graphc.compile(module) if compiled else module
    gx = graphc.tensor(x, requires_grad=True)
    out = run(gx)
    out.backward(graphc.tensor(grad))
    assert tuple(out.shape) == tuple(expected.shape)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_nearest_copies_values_exactly_including_non_finite(torch):
    x = _input()
    x[0, 0, 1, 2] = np.inf
    x[1, 3, 0, 0] = np.nan
    for kwargs in (dict(scale_factor=2), dict(size=(5, 9)), dict(scale_factor=0.7)):
        expected = torch.nn.functional.interpolate(torch.tensor(x), **kwargs).numpy()
        with graphc.no_grad():
            compiled = graphc.compile(gnn.Upsample(**kwargs))(graphc.tensor(x)).numpy()
        np.testing.assert_array_equal(GF.interpolate(graphc.tensor(x), **kwargs).numpy(), expected)
        np.testing.assert_array_equal(compiled, expected)


def test_pixel_shuffle_roundtrip_and_batch_dims(torch):
    x = np.random.default_rng(2).standard_normal((3, 2, 8, 3, 5)).astype("float32")
    out = GF.pixel_shuffle(graphc.tensor(x), 2)
    np.testing.assert_array_equal(out.numpy(), torch.nn.functional.pixel_shuffle(torch.tensor(x), 2).numpy())
    np.testing.assert_array_equal(GF.pixel_unshuffle(out, 2).numpy(), x)
    with pytest.raises(RuntimeError, match="divisible"):
        GF.pixel_shuffle(graphc.randn(1, 3, 2, 2), 2)


def test_interpolate_argument_errors_match_pytorch(torch):
    x = graphc.randn(1, 1, 2, 2)
    tx = torch.randn(1, 1, 2, 2)
    for kwargs in (dict(), dict(size=3, scale_factor=2), dict(size=3, align_corners=True)):
        with pytest.raises(ValueError) as theirs:
            torch.nn.functional.interpolate(tx, **kwargs)
        with pytest.raises(ValueError) as mine:
            GF.interpolate(x, **kwargs)
        assert str(mine.value) == str(theirs.value)
    with pytest.raises(ValueError, match="4-D"):
        GF.interpolate(graphc.randn(1, 2, 3), scale_factor=2)


def test_interpolate_matches_pytorch_for_any_sizes(torch):
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=60, deadline=None)
    @hypothesis.given(st.integers(1, 5), st.integers(1, 5), st.one_of(
        st.tuples(st.integers(1, 9), st.integers(1, 9)).map(lambda s: dict(size=s)),
        st.tuples(st.floats(0.3, 3.0), st.floats(0.3, 3.0)).map(lambda s: dict(scale_factor=s))),
        st.sampled_from([dict(mode="nearest"), dict(mode="bilinear"), dict(mode="bilinear", align_corners=True)]))
    def check(h, w, size, mode):
        x = np.random.default_rng(h * 10 + w).standard_normal((1, 2, h, w)).astype("float32")
        try:
            expected = torch.nn.functional.interpolate(torch.tensor(x), **size, **mode).numpy()
        except RuntimeError:  # an output size of 0
            with pytest.raises(RuntimeError, match="greater than 0"):
                GF.interpolate(graphc.tensor(x), **size, **mode).numpy()
            return
        got = GF.interpolate(graphc.tensor(x), **size, **mode).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    check()
