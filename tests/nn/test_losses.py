"""Loss modules and their F forms against PyTorch: values and gradients eagerly, compiled forward
and backward, compiled SGD train steps, finite differences in float64, errors, warnings, reprs.

Tolerances: float32 results within rtol 1e-5 / atol 1e-6 of PyTorch (eager and compiled: sums
of a few dozen terms in another order); compiled train steps within rtol 1e-5 / atol 1e-6 after
3 steps; float64 gradients within rtol 1e-6 / atol 1e-8 of central differences (eps 1e-6).
"""
import warnings

import numpy as np
import pytest

import graphc
import graphc.nn as gnn
import graphc.nn.functional as F
from numeric import numeric_gradient

rng = np.random.default_rng(0)
N, C = 5, 3
REDUCTIONS = ("mean", "sum", "none")
TOL = {"rtol": 1e-5, "atol": 1e-6}


def normal(*shape):
    return rng.standard_normal(shape)


def unit(*shape, low=0.05, high=0.95):
    return rng.uniform(low, high, shape)


def log_probabilities(*shape):
    p = unit(*shape)
    return np.log(p / p.sum(-1, keepdims=True))


def classes(*shape):
    return rng.integers(0, C, shape)


WEIGHT, POS_WEIGHT, CLASS_WEIGHT = unit(N, C, low=0.5, high=2.0), unit(C, low=0.5, high=2.0), np.array([0.5, 2.0, 1.5])

# name -> (module, constructor arguments, input, target); arrays in the arguments become tensors
CASES = {
    "l1": ("L1Loss", {}, normal(N, C), normal(N, C)),
    "mse": ("MSELoss", {}, normal(N, C), normal(N, C)),
    "smooth_l1": ("SmoothL1Loss", {}, normal(N, C), normal(N, C)),
    "smooth_l1_beta": ("SmoothL1Loss", {"beta": 0.4}, normal(N, C), normal(N, C)),
    "smooth_l1_beta0": ("SmoothL1Loss", {"beta": 0.0}, normal(N, C), normal(N, C)),
    "huber": ("HuberLoss", {}, 2 * normal(N, C), normal(N, C)),
    "huber_delta": ("HuberLoss", {"delta": 0.6}, normal(N, C), normal(N, C)),
    "bce": ("BCELoss", {}, unit(N, C), unit(N, C, low=0.0, high=1.0)),
    "bce_weight": ("BCELoss", {"weight": WEIGHT}, unit(N, C), unit(N, C, low=0.0, high=1.0)),
    "bce_row_weight": ("BCELoss", {"weight": POS_WEIGHT}, unit(N, C), unit(N, C, low=0.0, high=1.0)),
    "bce_logits": ("BCEWithLogitsLoss", {}, 4 * normal(N, C), unit(N, C, low=0.0, high=1.0)),
    "bce_logits_large": ("BCEWithLogitsLoss", {}, 60 * normal(N, C), unit(N, C, low=0.0, high=1.0)),
    "bce_logits_weights": ("BCEWithLogitsLoss", {"weight": WEIGHT, "pos_weight": POS_WEIGHT}, normal(N, C),
                           unit(N, C, low=0.0, high=1.0)),
    "kl": ("KLDivLoss", {}, log_probabilities(N, C), np.exp(log_probabilities(N, C))),
    "kl_log_target": ("KLDivLoss", {"log_target": True}, log_probabilities(N, C), log_probabilities(N, C)),
    "nll": ("NLLLoss", {}, log_probabilities(N, C), classes(N)),
    "nll_weight_ignore": ("NLLLoss", {"weight": CLASS_WEIGHT, "ignore_index": 1}, log_probabilities(N, C), classes(N)),
    "nll_kdim": ("NLLLoss", {"weight": CLASS_WEIGHT}, normal(2, C, 3, 2), classes(2, 3, 2)),
    "ce": ("CrossEntropyLoss", {}, normal(N, C), classes(N)),
    "ce_all": ("CrossEntropyLoss", {"weight": CLASS_WEIGHT, "ignore_index": 0, "label_smoothing": 0.2},
               normal(N, C), classes(N)),
    "ce_probabilities": ("CrossEntropyLoss", {"weight": CLASS_WEIGHT, "label_smoothing": 0.1}, normal(N, C),
                         np.exp(log_probabilities(N, C))),
    "ce_kdim": ("CrossEntropyLoss", {"label_smoothing": 0.1}, normal(2, C, 4), classes(2, 4)),
}
CASES["kl"][3][0, 1] = 0.0  # t log t is 0 at t = 0


def _tensors(lib, kwargs, dtype):
    return {k: lib.tensor(v.astype(dtype)) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}


def _inputs(lib, x, target, dtype):
    floating = target.dtype.kind == "f"
    xt = lib.tensor(x.astype(dtype), requires_grad=True)
    tt = lib.tensor(target.astype(dtype), requires_grad=True) if floating else lib.tensor(target)
    return xt, tt, floating


def _seed(shape, dtype):
    return np.random.default_rng(1).standard_normal(tuple(shape)).astype(dtype)


def _run(lib, nn, case, reduction, dtype=np.float32, compile=None):
    """(loss, input gradient, target gradient or None) of one library's loss module."""
    name, kwargs, x, target = CASES[case]
    loss = getattr(nn, name)(**_tensors(lib, kwargs, dtype), reduction=reduction)
    xt, tt, floating = _inputs(lib, x, target, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # KLDivLoss's 'mean' warns; tested below
        out = (compile(loss) if compile else loss)(xt, tt)
    (out * lib.tensor(_seed(out.shape, dtype))).sum().backward()
    return out.detach().numpy(), xt.grad.numpy(), tt.grad.numpy() if floating else None


def _assert_close(ours, theirs, tol=TOL):
    for a, b in zip(ours, theirs):
        if b is None:
            assert a is None
            continue
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, **tol)


def _without_xlogy_nan(case, ours, theirs):
    """PyTorch's kl_div target gradient is NaN where the target is 0 (xlogy's 0 / 0); graphc's is
    the finite -input there (t log t taken as 0 with zero slope). Compared everywhere else."""
    if case != "kl":
        return theirs
    nan = np.isnan(theirs[2])
    assert (nan == (CASES[case][3] == 0)).all() and np.isfinite(ours[2]).all()
    return theirs[0], theirs[1], np.where(nan, ours[2], theirs[2])


def _reductions(case):
    return ("batchmean", *REDUCTIONS) if CASES[case][0] == "KLDivLoss" else REDUCTIONS


ALL = [(case, reduction) for case in CASES for reduction in _reductions(case)]


@pytest.mark.parametrize("case,reduction", ALL)
def test_eager_loss_and_gradients_match_pytorch(torch, case, reduction):
    ours = _run(graphc, gnn, case, reduction)
    _assert_close(ours, _without_xlogy_nan(case, ours, _run(torch, torch.nn, case, reduction)))


@pytest.mark.parametrize("case,reduction", ALL)
def test_compiled_loss_and_gradients_match_pytorch(torch, case, reduction):
    """graphc.compile of the loss module itself: the forward and the compiled backward."""
    ours = _run(graphc, gnn, case, reduction, compile=graphc.compile)
    _assert_close(ours, _without_xlogy_nan(case, ours, _run(torch, torch.nn, case, reduction)))


@pytest.mark.parametrize("case", [c for c in CASES if not c.startswith(("nll", "ce", "mse"))])
def test_gradients_match_finite_differences(case):
    """Every gradient comes from the op table's rules; checked against central differences."""
    name, kwargs, x, target = CASES[case]
    module = getattr(gnn, name)(**_tensors(graphc, kwargs, np.float64), reduction="none")
    seed = _seed(x.shape, np.float64)

    def scalar(x_value, t_value):
        return float((module(graphc.tensor(x_value), graphc.tensor(t_value)).numpy() * seed).sum())
    _, grad_x, grad_t = _run(graphc, gnn, case, "none", np.float64)
    np.testing.assert_allclose(grad_x, numeric_gradient(lambda v: scalar(v, target), x), rtol=1e-6, atol=1e-8)
    with np.errstate(invalid="ignore"):  # kl: a step below t = 0 takes log of a negative target
        numeric = numeric_gradient(lambda v: scalar(x, v), target)
    smooth = target != 0 if name == "KLDivLoss" else np.ones(target.shape, bool)  # t log t has no slope at 0
    np.testing.assert_allclose(grad_t[smooth], numeric[smooth], rtol=1e-6, atol=1e-8)


# name -> (loss case, layers after the Linear, whose output the loss takes)
TRAIN = {
    "l1": ("l1", []), "mse": ("mse", []), "smooth_l1": ("smooth_l1_beta", []), "huber": ("huber_delta", []),
    "bce": ("bce_weight", ["Sigmoid"]), "bce_logits": ("bce_logits_weights", []),
    "kl": ("kl", ["LogSoftmax"]), "nll": ("nll_weight_ignore", ["LogSoftmax"]), "ce": ("ce_all", []),
    "ce_probabilities": ("ce_probabilities", []),
}


def _model(nn, layers):
    return nn.Sequential(nn.Linear(4, C), *(getattr(nn, n)(dim=1) if n == "LogSoftmax" else getattr(nn, n)()
                                           for n in layers))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", TRAIN)
def test_compiled_sgd_train_steps_match_pytorch(torch, name, reduction):
    """A tiny Linear model, 3 SGD steps of graphc.compile_train_step against torch's loop."""
    case, layers = TRAIN[name]
    loss_name, kwargs, _, target = CASES[case]
    reduction = "batchmean" if loss_name == "KLDivLoss" and reduction == "mean" else reduction
    ours, theirs = _model(gnn, layers), _model(torch.nn, layers)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    step = graphc.compile_train_step(ours, getattr(gnn, loss_name)(**_tensors(graphc, kwargs, np.float32),
                                                                   reduction=reduction),
                                     graphc.optim.SGD(ours.parameters(), lr=0.1))
    t_loss = getattr(torch.nn, loss_name)(**_tensors(torch, kwargs, np.float32), reduction=reduction)
    t_opt = torch.optim.SGD(theirs.parameters(), lr=0.1)
    x = normal(N, 4).astype(np.float32)
    t = target.astype(np.float32) if target.dtype.kind == "f" else target
    for _ in range(3):
        got = step(graphc.tensor(x), graphc.tensor(t)).item()
        t_opt.zero_grad()
        expected = t_loss(theirs(torch.tensor(x)), torch.tensor(t))
        expected.backward()
        t_opt.step()
        assert got == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k].numpy(), v.numpy(), **TOL)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("function,module,kwargs", [
    ("l1_loss", "L1Loss", {}), ("smooth_l1_loss", "SmoothL1Loss", {"beta": 0.3}),
    ("huber_loss", "HuberLoss", {"delta": 2.0}), ("binary_cross_entropy", "BCELoss", {}),
    ("binary_cross_entropy_with_logits", "BCEWithLogitsLoss", {}), ("kl_div", "KLDivLoss", {"log_target": True}),
    ("mse_loss", "MSELoss", {}), ("nll_loss", "NLLLoss", {"ignore_index": 2}),
    ("cross_entropy", "CrossEntropyLoss", {"label_smoothing": 0.3})])
def test_functional_forms_equal_the_modules_and_pytorch(torch, function, module, kwargs):
    floating = module not in ("NLLLoss", "CrossEntropyLoss")
    x = unit(N, C)
    target = unit(N, C) if floating else classes(N)
    for reduction in REDUCTIONS:
        got = getattr(F, function)(graphc.tensor(x), graphc.tensor(target), reduction=reduction, **kwargs)
        via_module = getattr(gnn, module)(reduction=reduction, **kwargs)(graphc.tensor(x), graphc.tensor(target))
        expected = getattr(torch.nn.functional, function)(torch.tensor(x), torch.tensor(target),
                                                          reduction=reduction, **kwargs)
        np.testing.assert_array_equal(got.numpy(), via_module.numpy())
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("function", ["mse_loss", "l1_loss", "huber_loss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_elementwise_weights_match_pytorch(torch, function, reduction):
    """mse_loss and l1_loss take the weighted mean, huber_loss the plain mean of weighted terms."""
    x, t, w = normal(N, C), normal(N, C), unit(N, C)
    got = getattr(F, function)(graphc.tensor(x), graphc.tensor(t), reduction=reduction, weight=graphc.tensor(w))
    expected = getattr(torch.nn.functional, function)(torch.tensor(x), torch.tensor(t), reduction=reduction,
                                                      weight=torch.tensor(w))
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="Weights and input must have the same size"):
        getattr(F, function)(graphc.tensor(x), graphc.tensor(t), weight=graphc.tensor(w[0]))


@pytest.mark.parametrize("module", ["BCELoss", "BCEWithLogitsLoss"])
def test_binary_cross_entropy_at_the_boundaries_matches_pytorch(torch, module):
    """Inputs of exactly 0 and 1 (and logits of +-100): log clamped at -100, PyTorch's finite gradient."""
    x = np.array([0.0, 1.0, 1e-30, 1.0 - 1e-7, 0.5, 0.0], np.float32)
    if module == "BCEWithLogitsLoss":
        x = np.array([-100.0, 100.0, 0.0, 30.0, -30.0, 1e-3], np.float32)
    t = np.array([1.0, 0.0, 1.0, 0.0, 0.3, 0.0], np.float32)
    expected_x = torch.tensor(x, requires_grad=True)
    expected = getattr(torch.nn, module)(reduction="sum")(expected_x, torch.tensor(t))
    expected.backward()
    for run in (getattr(gnn, module)(reduction="sum"), graphc.compile(getattr(gnn, module)(reduction="sum"))):
        got_x = graphc.tensor(x, requires_grad=True)
        got = run(got_x, graphc.tensor(t))
        got.backward()
        assert got.item() == pytest.approx(expected.item(), rel=1e-6)
        np.testing.assert_allclose(got_x.grad.numpy(), expected_x.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("bad", [1.5, -0.1, np.nan])
def test_binary_cross_entropy_rejects_values_outside_0_1_eagerly_and_compiled(torch, bad):
    x, t = np.array([0.2, bad, 0.9], np.float32), np.array([0.0, 1.0, 0.5], np.float32)
    with pytest.raises(RuntimeError, match="all elements of input should be between 0 and 1"):
        torch.nn.functional.binary_cross_entropy(torch.tensor(x), torch.tensor(t))
    compiled = graphc.compile(gnn.BCELoss())
    compiled(graphc.tensor(t), graphc.tensor(t))  # in range: runs
    for run in (F.binary_cross_entropy, compiled):
        with pytest.raises(RuntimeError, match="all elements of input should be between 0 and 1"):
            run(graphc.tensor(x), graphc.tensor(t))
        with pytest.raises(RuntimeError, match="all elements of target should be between 0 and 1"):
            run(graphc.tensor(t), graphc.tensor(x))
    with pytest.raises(RuntimeError, match=r"in module '<root>' \(BCELoss\) at .*: all elements of input"):
        compiled(graphc.tensor(x), graphc.tensor(t))


def test_a_train_step_with_an_input_outside_0_1_raises_and_changes_nothing():
    model = gnn.Linear(4, 3)  # no sigmoid: its outputs leave [0, 1]
    step = graphc.compile_train_step(model, gnn.BCELoss(), graphc.optim.SGD(model.parameters(), lr=0.1))
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError, match=r"in module '<BCELoss>'.*all elements of input should be between 0 and 1"):
        step(graphc.tensor(np.full((2, 4), 5.0, np.float32)), graphc.tensor(np.zeros((2, 3), np.float32)))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])


def _error(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            call()
        except Exception as error:  # noqa: BLE001  (the type is what is compared)
            return type(error), str(error).replace("torch.Size", "graphc.Size")
    raise AssertionError("no error raised")


@pytest.mark.parametrize("function,x_shape,t_shape,kwargs", [
    ("nll_loss", (3, 4), (4,), {}), ("cross_entropy", (3, 4), (2,), {}),
    ("nll_loss", (3, 4), (3, 2), {}), ("cross_entropy", (3, 4, 5), (3, 4), {}), ("nll_loss", (4,), (2,), {}),
    ("nll_loss", (), (), {}), ("cross_entropy", (3, 4), (3,), {"weight": (3,)}),
    ("cross_entropy", (3, 4), (3, 5), {}), ("nll_loss", (2, 4, 3, 5), (2, 3, 4), {}),
    ("binary_cross_entropy", (2,), (1, 2), {}), ("binary_cross_entropy_with_logits", (2, 3), (3,), {}),
    ("binary_cross_entropy_with_logits", (2, 3), (2, 3), {"pos_weight": (2,)}),
    ("l1_loss", (3, 4), (3, 5), {}), ("mse_loss", (3, 4), (2, 1, 5), {}), ("kl_div", (3, 4), (3, 5), {}),
    ("smooth_l1_loss", (2, 3), (4, 3), {}), ("huber_loss", (2, 3), (4, 3), {}),
])
def test_mismatched_shapes_raise_pytorchs_errors(torch, function, x_shape, t_shape, kwargs):
    """Each loss names the mismatch itself, as PyTorch does, not through an op deep inside."""
    def arguments(lib):
        index = function == "nll_loss" or (function == "cross_entropy" and len(t_shape) != len(x_shape))
        x = lib.tensor(unit(*x_shape).astype(np.float32))
        t = lib.tensor(classes(*t_shape)) if index else lib.tensor(unit(*t_shape).astype(np.float32))
        return x, t, {k: lib.tensor(unit(*v).astype(np.float32)) for k, v in kwargs.items()}
    x, t, kw = arguments(torch)
    expected = _error(lambda: getattr(torch.nn.functional, function)(x, t, **kw))
    x, t, kw = arguments(graphc)
    assert _error(lambda: getattr(F, function)(x, t, **kw)) == expected


@pytest.mark.parametrize("function", ["l1_loss", "mse_loss", "smooth_l1_loss", "huber_loss"])
def test_pointwise_losses_warn_about_broadcasting_and_still_broadcast(torch, function):
    x, t = normal(3, 4), normal(1, 4)
    with pytest.warns(UserWarning, match=r"Using a target size \(graphc.Size\(\[1, 4\]\)\) that is different to "
                                         r"the input size \(graphc.Size\(\[3, 4\]\)\)"):
        got = getattr(F, function)(graphc.tensor(x), graphc.tensor(t))
    with pytest.warns(UserWarning):
        expected = getattr(torch.nn.functional, function)(torch.tensor(x), torch.tensor(t))
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)


def test_kl_div_mean_warns_and_batchmean_divides_by_the_batch(torch):
    x, t = log_probabilities(4, 3), np.exp(log_probabilities(4, 3))
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        mean = F.kl_div(graphc.tensor(x), graphc.tensor(t))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batchmean = F.kl_div(graphc.tensor(x), graphc.tensor(t), reduction="batchmean")
    assert batchmean.item() == pytest.approx(mean.item() * 3, rel=1e-12)
    assert batchmean.item() == pytest.approx(torch.nn.functional.kl_div(torch.tensor(x), torch.tensor(t),
                                                                        reduction="batchmean").item(), rel=1e-12)
    with pytest.raises(ValueError, match="avg is not a valid value for reduction"):
        gnn.KLDivLoss(reduction="avg")(graphc.tensor(x), graphc.tensor(t))


def test_invalid_hyperparameters_raise_like_pytorch(torch):
    x, t = graphc.randn(2, 3), graphc.randn(2, 3)
    with pytest.raises(RuntimeError, match="does not support negative values for beta"):
        gnn.SmoothL1Loss(beta=-1.0)(x, t)
    with pytest.raises(RuntimeError, match="does not support non-positive values for delta"):
        gnn.HuberLoss(delta=0.0)(x, t)
    with pytest.raises(ValueError, match="mean_all is not a valid value for reduction"):
        gnn.L1Loss(reduction="mean_all")(x, t)


@pytest.mark.parametrize("size_average,reduce", [(None, False), (False, None), (True, True), (False, True)])
@pytest.mark.parametrize("module", ["L1Loss", "MSELoss", "SmoothL1Loss", "BCEWithLogitsLoss", "KLDivLoss",
                                    "CrossEntropyLoss"])
def test_legacy_size_average_and_reduce_flags(torch, module, size_average, reduce):
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        ours = getattr(gnn, module)(size_average=size_average, reduce=reduce)
    with pytest.warns(UserWarning):
        theirs = getattr(torch.nn, module)(size_average=size_average, reduce=reduce)
    assert ours.reduction == theirs.reduction
    with pytest.warns(UserWarning, match="please use reduction='none' instead"):
        assert F.l1_loss(graphc.randn(2, 3), graphc.randn(2, 3), reduce=False).shape == (2, 3)


@pytest.mark.parametrize("module,kwargs,keys", [
    ("L1Loss", {}, []), ("SmoothL1Loss", {"beta": 0.5}, []), ("HuberLoss", {"delta": 2.0}, []),
    ("BCELoss", {"weight": (3,)}, ["weight"]), ("BCEWithLogitsLoss", {"pos_weight": (3,)}, ["pos_weight"]),
    ("BCEWithLogitsLoss", {"weight": (3,), "pos_weight": (3,)}, ["weight", "pos_weight"]),
    ("KLDivLoss", {"reduction": "batchmean", "log_target": True}, []),
    ("CrossEntropyLoss", {"weight": (3,), "label_smoothing": 0.1}, ["weight"]), ("NLLLoss", {}, []),
    ("MSELoss", {"reduction": "sum"}, [])])
def test_reprs_attributes_and_state_dict_keys_match_pytorch(torch, module, kwargs, keys):
    ours = getattr(gnn, module)(**{k: graphc.ones(*v) if isinstance(v, tuple) else v for k, v in kwargs.items()})
    theirs = getattr(torch.nn, module)(**{k: torch.ones(*v) if isinstance(v, tuple) else v for k, v in kwargs.items()})
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == keys
    for attribute in ("reduction", "beta", "delta", "log_target", "ignore_index", "label_smoothing"):
        assert getattr(ours, attribute, None) == getattr(theirs, attribute, None)
