"""Stateless layer functions (`graphc.nn.functional`, imported as F), written with op functions only.

They run eagerly on arrays and record nodes while tracing, so nothing here may look at a tensor's
values. Losses pick target classes with `one_hot` masks rather than gathers: a masked sum is a select,
a product and a reduction, which the compiler already fuses and differentiates.
"""
from __future__ import annotations

import warnings
from typing import Any

import math

import numpy as np

from .. import random
from ..autograd import is_grad_enabled
from ..ops import functions as fn
from ..tensor import Tensor, as_tensor
from .functional_conv import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool1d,  # noqa: F401
                              adaptive_max_pool2d, avg_pool1d, avg_pool2d, conv1d, conv2d, max_pool1d, max_pool2d)

def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input @ weight.T + bias; the transpose is a matmul flag, never a copy."""
    if input.ndim == 1:
        return linear(input.unsqueeze(0), weight, bias).squeeze(0)
    out = fn.matmul(input, weight, False, True)
    return out if bias is None else fn.add(out, bias)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, fn.relu(input), inplace)


def tanh(input: Tensor) -> Tensor:
    return fn.tanh(input)


def sigmoid(input: Tensor) -> Tensor:
    return fn.sigmoid(input)



def _softmax_dim(name: str, ndim: int, dim: int | None) -> int:
    if dim is not None:
        return dim
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. "
                  "Change the call to include dim=X as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: int | None = None, dtype: Any = None) -> Tensor:
    x = input if dtype is None else input.to(dtype)
    return fn.softmax(x, _softmax_dim("softmax", x.ndim, dim))


def log_softmax(input: Tensor, dim: int | None = None, dtype: Any = None) -> Tensor:
    x = input if dtype is None else input.to(dtype)
    return fn.log_softmax(x, _softmax_dim("log_softmax", x.ndim, dim))


def _legacy_reduction(size_average: bool | None, reduce: bool | None, stacklevel: int = 3) -> str:
    """PyTorch's deprecated size_average/reduce flags (None counts as True), with its warning
    (attributed to the caller's caller by default)."""
    reduction = "none" if reduce is False else "sum" if size_average is False else "mean"
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{reduction}' instead.",
                  stacklevel=stacklevel)
    return reduction


def _reduction(reduction: str, size_average: bool | None = None, reduce: bool | None = None) -> str:
    """The reduction to apply: the legacy flags, when given, override `reduction`."""
    if size_average is not None or reduce is not None:
        return _legacy_reduction(size_average, reduce, stacklevel=4)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _reduce(loss: Tensor, reduction: str, weights: Tensor | None = None) -> Tensor:
    """'mean' is a weighted mean when per-sample `weights` are given (their sum is the divisor)."""
    if reduction == "none":
        return loss
    total = fn.sum(loss)
    if reduction == "sum":
        return total
    return fn.mean(loss) if weights is None else fn.div(total, fn.sum(weights))


def _broadcastable(input: Tensor, target: Tensor) -> None:
    """PyTorch's error for operands that cannot broadcast, before an op deep inside the loss says so."""
    a, b = tuple(input.shape), tuple(target.shape)
    ndim = max(len(a), len(b))
    for dim in reversed(range(ndim)):
        size_a = a[dim - ndim + len(a)] if dim - ndim + len(a) >= 0 else 1
        size_b = b[dim - ndim + len(b)] if dim - ndim + len(b) >= 0 else 1
        if size_a != size_b and 1 not in (size_a, size_b):
            raise RuntimeError(f"The size of tensor a ({size_a}) must match the size of tensor b ({size_b}) "
                               f"at non-singleton dimension {dim}")


def _pointwise_difference(input: Tensor, target: Tensor) -> Tensor:
    """input - target, warning like PyTorch when the sizes differ (the result still broadcasts)."""
    if tuple(input.shape) != tuple(target.shape):
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
                      "This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", stacklevel=3)
    _broadcastable(input, target)
    return fn.sub(input, target)


def _element_weights(weight: Tensor | None, input: Tensor) -> None:
    if weight is not None and tuple(weight.shape) != tuple(input.shape):
        raise ValueError("Weights and input must have the same size.")


def mse_loss(input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """(input - target)^2 per element; with `weight` (input's size), 'mean' is the weighted mean."""
    reduction = _reduction(reduction, size_average, reduce)
    diff = _pointwise_difference(input, target)
    _element_weights(weight, input)
    loss = fn.mul(diff, diff)
    return _reduce(loss, reduction) if weight is None else _reduce(fn.mul(loss, weight), reduction, weight)


def l1_loss(input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
            reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """|input - target| per element (its gradient at input == target is 0, as PyTorch's sign);
    with `weight` (input's size), 'mean' is the weighted mean."""
    reduction = _reduction(reduction, size_average, reduce)
    loss = fn.abs(_pointwise_difference(input, target))
    _element_weights(weight, input)
    return _reduce(loss, reduction) if weight is None else _reduce(fn.mul(loss, weight), reduction, weight)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = input - target); beta = 0 is L1."""
    reduction = _reduction(reduction, size_average, reduce)
    diff = _pointwise_difference(input, target)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    distance = fn.abs(diff)
    if beta == 0:
        return _reduce(distance, reduction)
    quadratic = fn.mul(fn.mul(diff, diff), 0.5 / beta)
    return _reduce(fn.where(fn.lt(distance, beta), quadratic, fn.sub(distance, 0.5 * beta)), reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta): smooth_l1_loss(beta=delta) times delta.
    `weight` (input's size) scales each element; unlike mse_loss's, 'mean' then stays the plain
    mean, as PyTorch's."""
    reduction = _reduction(reduction)
    diff = _pointwise_difference(input, target)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    _element_weights(weight, input)
    distance = fn.abs(diff)
    loss = fn.where(fn.lt(distance, delta), fn.mul(fn.mul(diff, diff), 0.5),
                    fn.mul(fn.sub(distance, 0.5 * delta), delta))
    return _reduce(loss if weight is None else fn.mul(loss, weight), reduction)


def _same_size(input: Tensor, target: Tensor, message: str) -> None:
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(message.format(target=target.shape, input=input.shape))


def _broadcasts_to(weight: Tensor, input: Tensor, name: str) -> None:
    """A per-element weight must broadcast to the input's shape without enlarging it."""
    _broadcastable(weight, input)
    if weight.ndim > input.ndim:
        raise RuntimeError(f"{name} of size {list(weight.shape)} cannot be broadcast to the input size "
                           f"{list(input.shape)}")


# below this the log is below -100 in float32 and float64, where PyTorch clamps it; log(0) is never taken
_LOG_FLOOR_ARGUMENT = 1e-44


def _clamped_log(x: Tensor) -> Tensor:
    return fn.maximum(fn.log(fn.maximum(x, _LOG_FLOOR_ARGUMENT)), -100.0)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> Tensor:
    """-weight (t log x + (1 - t) log(1 - x)), each log clamped at -100, for x and t in [0, 1].

    PyTorch's gradient in x is weight (x - t) / max(x (1 - x), 1e-12), finite at 0 and 1 where
    the clamped logs are flat: the loss is computed from a detached x, and that slope attached as
    (x - detach(x)) * slope, whose value is exactly 0. t and weight get their gradients as usual.
    """
    reduction = _reduction(reduction, size_average, reduce)
    _same_size(input, target, "Using a target size ({target}) that is different to the input size ({input}) is "
                              "deprecated. Please ensure they have the same size.")
    if weight is not None:
        _broadcasts_to(weight, input, "weight")
    x = fn.check_range(input, 0.0, 1.0, "all elements of input should be between 0 and 1")
    t = fn.check_range(target, 0.0, 1.0, "all elements of target should be between 0 and 1")
    fixed = fn.detach(x)
    loss = fn.neg(fn.add(fn.mul(t, _clamped_log(fixed)), fn.mul(fn.sub(1.0, t), _clamped_log(fn.sub(1.0, fixed)))))
    slope = fn.div(fn.sub(fixed, fn.detach(t)), fn.maximum(fn.mul(fn.sub(1.0, fixed), fixed), 1e-12))
    if weight is not None:
        loss, slope = fn.mul(loss, weight), fn.mul(slope, fn.detach(weight))
    return _reduce(fn.add(loss, fn.mul(fn.sub(x, fixed), fn.detach(slope))), reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average: bool | None = None, reduce: bool | None = None,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
    """binary_cross_entropy(sigmoid(x), t) with pos_weight p scaling the positive term, in the
    stable form (1 - t) x + (1 + (p - 1) t) (log(1 + exp(-|x|)) + max(-x, 0)): exp never overflows."""
    reduction = _reduction(reduction, size_average, reduce)
    _same_size(input, target, "Target size ({target}) must be the same as input size ({input})")
    for name, extra in (("weight", weight), ("pos_weight", pos_weight)):
        if extra is not None:
            _broadcasts_to(extra, input, name)
    softplus_of_negative = fn.add(fn.log(fn.add(fn.exp(fn.neg(fn.abs(input))), 1.0)), fn.maximum(fn.neg(input), 0.0))
    if pos_weight is not None:
        softplus_of_negative = fn.mul(softplus_of_negative, fn.add(fn.mul(fn.sub(pos_weight, 1.0), target), 1.0))
    loss = fn.add(fn.mul(fn.sub(1.0, target), input), softplus_of_negative)
    return _reduce(loss if weight is None else fn.mul(loss, weight), reduction)


def kl_div(input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """target (log target - input) per element, input being log-probabilities (0 where target is 0);
    `log_target` says target holds log-probabilities too. 'batchmean' divides the sum by the batch size."""
    if size_average is not None or reduce is not None:
        reduced_as = _legacy_reduction(size_average, reduce)
    else:
        if reduction == "mean":
            warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                          "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                          "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                          stacklevel=2)
        reduced_as = "sum" if reduction == "batchmean" else _reduction(reduction)
    _broadcastable(target, input)  # PyTorch's order: its first op reads the target
    if log_target:
        loss = fn.mul(fn.exp(target), fn.sub(target, input))
    else:  # t log t is 0 at t = 0 (PyTorch's xlogy); log(1) there keeps the value and gradient finite
        t_log_t = fn.mul(target, fn.log(fn.where(fn.eq(target, 0.0), 1.0, target)))
        loss = fn.sub(t_log_t, fn.mul(target, input))
    loss = _reduce(loss, reduced_as)
    return fn.div(loss, input.shape[0]) if reduction == "batchmean" and input.ndim != 0 else loss


def _classes_last(input: Tensor) -> Tensor:
    """(N, C, d1, ...) -> (N, d1, ..., C): class scores on the last axis, where one_hot puts them."""
    return input if input.ndim <= 2 else fn.permute(input, (0, *range(2, input.ndim), 1))


def _checked_targets(target: Tensor, classes: int, ignore_index: int) -> Tensor:
    """`target`, checked eagerly and in compiled code: one_hot would turn a bad index into a
    silent zero row, where PyTorch raises."""
    if target.dtype != "int64":
        raise RuntimeError(f"expected scalar type Long but found {target.dtype}")
    return fn.check_index(target, classes, ignore_index, "Target {value} is out of bounds.")


def _counted(target: Tensor, ignore_index: int, dtype: str) -> Tensor:
    """1 where a sample counts, 0 where its target is ignore_index."""
    return fn.cast(target != ignore_index, dtype)


def _target_weights(target: Tensor, classes: int, dtype: str, weight: Tensor | None, ignore_index: int) -> Tensor:
    """w[..., c] = weight[c] where c is the sample's target, else 0 (all 0 for ignored samples)."""
    w = fn.one_hot(_checked_targets(target, classes, ignore_index), classes, str(dtype))
    if 0 <= ignore_index < classes:  # otherwise one_hot already leaves ignored rows at zero
        w = fn.mul(w, _counted(target, ignore_index, dtype).unsqueeze(-1))
    return w if weight is None else fn.mul(w, weight)


def _weighted_pick(scores: Tensor, w: Tensor) -> Tensor:
    """sum over classes of w * scores, selecting where w is nonzero before multiplying: a -inf
    score of a class the sample does not pick then adds 0 (as in PyTorch), not 0 * -inf = NaN."""
    return fn.sum(fn.mul(fn.where(w != 0, scores, 0.0), w), -1)


def _check_class_target(input: Tensor, target: Tensor, weight: Tensor | None) -> None:
    """PyTorch's checks of class-index targets (and class weights) against the input's shape,
    before one_hot or a broadcast deep inside the loss fails less clearly."""
    if input.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.ndim})")
    if input.ndim != 1 and target.ndim >= 1 and input.shape[0] != target.shape[0]:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
                         f"({target.shape[0]}).")
    if input.ndim <= 2 and target.ndim > 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if input.ndim == 1 and target.ndim == 1 and target.shape[0] != 1:
        raise ValueError(f"For 1D input, 1D target must have size 1, but got target size: {target.shape[0]}")
    expected = [input.shape[0], *input.shape[2:]]
    if input.ndim > 2 and list(target.shape) != expected:  # PyTorch words it its own way for 4-D input
        if input.ndim == 4:
            raise RuntimeError(f"size mismatch (got input: {list(input.shape)} , target: {list(target.shape)}")
        raise RuntimeError(f"Expected target size {expected}, got {list(target.shape)}")
    _check_class_weight(input, weight)


def _check_class_weight(input: Tensor, weight: Tensor | None) -> None:
    classes = input.shape[0 if input.ndim == 1 else 1]
    if weight is not None and (weight.ndim != 1 or weight.shape[0] != classes):
        raise RuntimeError(f"weight tensor should be defined either for all {classes} classes or no classes "
                           f"but got weight tensor of shape: {list(weight.shape)}")


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: bool | None = None,
             ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """-weight[t] * input[t] per sample; 'mean' divides by the summed weights of counted samples."""
    reduction = _reduction(reduction, size_average, reduce)
    _check_class_target(input, target, weight)
    scores = _classes_last(input)
    w = _target_weights(target, scores.shape[-1], input.dtype, weight, ignore_index)
    return _reduce(fn.neg(_weighted_pick(scores, w)), reduction, w)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: bool | None = None,
                  ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """log_softmax over classes (dim 1, or 0 for a single sample), then the negative log likelihood.

    `target` holds class indices (int64) or class probabilities (float, shaped like input). Label
    smoothing mixes the target with the uniform distribution:
    loss = (1 - eps) * nll + eps / C * (sum over classes of -weight_c * log p_c).
    """
    reduction = _reduction(reduction, size_average, reduce)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if target.dtype.is_floating_point and tuple(target.shape) == tuple(input.shape):
        _check_class_weight(input, weight)
        logp = _classes_last(fn.log_softmax(input, 0 if input.ndim == 1 else 1))
        return _soft_target_loss(logp, _classes_last(target), weight, reduction, label_smoothing)
    _check_class_target(input, target, weight)
    logp = _classes_last(fn.log_softmax(input, 0 if input.ndim == 1 else 1))
    classes = logp.shape[-1]
    w = _target_weights(target, classes, logp.dtype, weight, ignore_index)
    nll = _reduce(fn.neg(_weighted_pick(logp, w)), reduction, w)
    if label_smoothing == 0.0:
        return nll
    counted = _counted(target, ignore_index, logp.dtype)
    weighted = logp if weight is None else fn.mul(logp, weight)
    smooth = _reduce(fn.mul(fn.neg(fn.sum(weighted, -1)), counted), reduction, counted if weight is None else w)
    return fn.add(fn.mul(nll, 1.0 - label_smoothing), fn.mul(smooth, label_smoothing / classes))


def _soft_target_loss(logp: Tensor, target: Tensor, weight: Tensor | None, reduction: str,
                      label_smoothing: float) -> Tensor:
    """-sum_c weight_c * target_c * log p_c per sample; 'mean' divides by the sample count."""
    classes = logp.shape[-1]
    if label_smoothing > 0.0:
        target = fn.add(fn.mul(target, 1.0 - label_smoothing), label_smoothing / classes)
    product = fn.mul(logp, target)
    if weight is not None:
        product = fn.mul(product, weight)
    return _reduce(fn.neg(fn.sum(product, -1)), reduction)


# --- activations ----------------------------------------------------------------------------
# Each is composed of op functions so eager autograd and compiled backward share one rule; where
# PyTorch defines the gradient at a kink, the choice of comparison below reproduces it.

def _maybe_inplace(input: Tensor, result: Tensor, inplace: bool) -> Tensor:
    """inplace=True writes `result` into `input` when no gradient is recorded (eager, as PyTorch).
    A leaf that requires grad refuses, as in PyTorch; a tensor with a history, or a traced one,
    gets the result as a new tensor (graphc never rewrites a value autograd may have saved)."""
    if not inplace or fn.is_symbolic(input):
        return result
    if input.requires_grad and is_grad_enabled():
        if input.is_leaf:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        return result
    return input.copy_(result)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x if x > 0 else slope * x; the gradient at 0 is the slope, as PyTorch's."""
    out = fn.where(fn.gt(input, 0.0), input, fn.mul(input, negative_slope))
    return _maybe_inplace(input, out, inplace)


def _negative_part(input: Tensor) -> Tensor:
    """min(x, 0) with the gradient of x where x <= 0 and none elsewhere, so a branch computed
    on it (exp) cannot overflow where it is not selected and poison the gradient with 0 * inf."""
    return fn.where(fn.gt(input, 0.0), 0.0, input)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x if x > 0 else alpha * expm1(x); the gradient at 0 is alpha, as PyTorch's."""
    negative = fn.mul(fn.expm1(_negative_part(input)), alpha)
    return _maybe_inplace(input, fn.where(fn.gt(input, 0.0), input, negative), inplace)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x): exactly with erf, or PyTorch's tanh approximation."""
    if approximate == "none":
        return fn.mul(fn.mul(input, 0.5), fn.add(fn.erf(fn.mul(input, 1.0 / math.sqrt(2.0))), 1.0))
    if approximate == "tanh":
        cube = fn.mul(fn.mul(input, input), input)
        inner = fn.mul(fn.add(input, fn.mul(cube, 0.044715)), math.sqrt(2.0 / math.pi))
        return fn.mul(fn.mul(input, 0.5), fn.add(fn.tanh(inner), 1.0))
    raise RuntimeError(f"approximate argument must be either none or tanh. Got: {approximate}")


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, fn.mul(input, fn.sigmoid(input)), inplace)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as PyTorch)."""
    scaled = fn.mul(input, beta)
    linear = fn.gt(scaled, threshold)
    safe = fn.where(linear, 0.0, scaled)  # exp of the linear branch is never taken (nor its gradient)
    smooth = fn.div(fn.log1p(fn.exp(safe)), beta)
    return fn.where(linear, input, smooth)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, fn.mul(input, fn.tanh(softplus(input))), inplace)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """clamp(x, min_val, max_val); the gradient passes strictly inside (min_val, max_val) and at
    NaN, and is 0 at the bounds, as PyTorch's hardtanh_backward."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    outside = fn.where(fn.le(input, min_val), True, fn.ge(input, max_val))
    bounded = fn.where(fn.lt(input, min_val), min_val, fn.where(fn.gt(input, max_val), max_val, input))
    return _maybe_inplace(input, fn.where(outside, fn.detach(bounded), input), inplace)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(input, 0.0, 6.0, inplace)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6; the gradient 1/6 strictly inside (-3, 3), else 0 (as PyTorch)."""
    linear = fn.div(fn.add(input, 3.0), 6.0)
    inside = fn.where(fn.gt(input, -3.0), fn.lt(input, 3.0), False)
    bounded = fn.where(fn.le(input, -3.0), 0.0, fn.where(fn.ge(input, 3.0), 1.0, linear))
    return _maybe_inplace(input, fn.where(inside, linear, fn.detach(bounded)), inplace)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6; the gradient 0 up to -3 (included), x / 3 + 1/2 below 3, 1 from 3
    on, as PyTorch's hardswish_backward."""
    middle = fn.div(fn.mul(input, fn.add(input, 3.0)), 6.0)
    out = fn.where(fn.le(input, -3.0), fn.mul(input, 0.0), fn.where(fn.lt(input, 3.0), middle, input))
    return _maybe_inplace(input, out, inplace)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x if x > 0 else weight * x, one weight per channel (dim 1) or one shared."""
    if weight.ndim != 1:
        raise RuntimeError("prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = "
                           f"{weight.ndim}")
    channels, input_channels = weight.shape[0], (input.shape[1] if input.ndim >= 2 else 1)
    if channels not in (1, input_channels):
        raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                           f"{channels} and channel size = {input_channels}.")
    shape = (channels,) + (1,) * (input.ndim - 2) if input.ndim >= 2 else (1,) * input.ndim
    weight = fn.reshape(weight, shape)
    return fn.where(fn.gt(input, 0.0), input, fn.mul(weight, input))


# --- dropout ----------------------------------------------------------------------------------
def _check_probability(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _dropped(input: Tensor, p: float, mask_shape: tuple[int, ...]) -> Tensor:
    """input * keep / (1 - p), keep ~ Bernoulli(1 - p) of `mask_shape` (broadcast to input): kept
    where a uniform draw is >= p. The draw's key is fresh per call (graphc.random.next_key)."""
    if p == 1.0:
        return fn.mul(input, 0.0)
    uniform = fn.random_uniform(random.next_key(), mask_shape, str(input.dtype))
    noise = fn.mul(fn.cast(fn.ge(uniform, p), str(input.dtype)), 1.0 / (1.0 - p))
    return fn.mul(input, noise)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1 / (1 - p); the identity in
    eval mode or for p = 0 (the gradient is the same mask / (1 - p))."""
    _check_probability(p)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    return _maybe_inplace(input, _dropped(input, p, tuple(input.shape)), inplace)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels: one draw per (N, C) of an (N, C, H, W) input, or per C of (C, H, W)."""
    _check_probability(p)
    if input.ndim not in (3, 4):
        warnings.warn(f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is deprecated and will "
                      "result in an error in a future release. To retain the behavior and silence this "
                      "warning, please use dropout instead. Note that dropout2d exists to provide channel-wise "
                      "dropout on inputs with 2 spatial dimensions, a channel dimension, and an optional batch "
                      "dimension (i.e. 3D or 4D inputs).", stacklevel=2)
    if input.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                      "behavior is desired - input is interpreted as shape (N, C, L), where C is the channel "
                      "dim. This behavior will change in a future release to interpret the input as one "
                      "without a batch dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise "
                      "dropout behavior, please switch to using dropout1d instead.", stacklevel=2)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    mask_shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    return _maybe_inplace(input, _dropped(input, p, mask_shape), inplace)


# --- lookups and resampling -------------------------------------------------------------------
def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of `weight` at the int64 indices `input` (checked: IndexError out of range, eagerly
    and from native code); the row at padding_idx gets no gradient."""
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise ValueError("graphc's embedding supports max_norm=None, scale_grad_by_freq=False and sparse=False only")
    rows = weight.shape[0]
    if padding_idx is not None:
        if not -rows <= padding_idx < rows:
            raise AssertionError("Padding_idx must be within num_embeddings")
        padding_idx %= rows
    if input.dtype != "int64":
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                           f"Long, Int; but got {input.dtype} instead")
    indices = fn.check_index(input, rows, 0, "index out of range in self")  # 0 is always in range
    out = fn.gather_rows(weight, indices)
    if padding_idx is None:
        return out
    padded = fn.reshape(fn.eq(indices, padding_idx), tuple(input.shape) + (1,) * (weight.ndim - 1))
    return fn.where(padded, fn.detach(out), out)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C r^2, H, W) -> (*, C, H r, W r)."""
    r = int(upscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"pixel_shuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.ndim} dimension(s)")
    *batch, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError("pixel_shuffle expects its input's 'channel' dimension to be divisible by the square "
                           f"of upscale_factor, but input.size(-3)={c} is not divisible by {r * r}")
    lead = len(batch)
    x = fn.reshape(input, (*batch, c // (r * r), r, r, h, w))
    x = fn.permute(x, (*range(lead + 1), lead + 3, lead + 1, lead + 4, lead + 2))
    return fn.reshape(x, (*batch, c // (r * r), h * r, w * r))


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H r, W r) -> (*, C r^2, H, W): the inverse of pixel_shuffle."""
    r = int(downscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"pixel_unshuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.ndim} dimension(s)")
    *batch, c, h, w = input.shape
    if h % r or w % r:
        raise RuntimeError("pixel_unshuffle expects height and width to be divisible by downscale_factor, "
                           f"but input.size(-2)={h} and input.size(-1)={w} are not")
    lead = len(batch)
    x = fn.reshape(input, (*batch, c, h // r, r, w // r, r))
    x = fn.permute(x, (*range(lead + 1), lead + 2, lead + 4, lead + 1, lead + 3))
    return fn.reshape(x, (*batch, c * r * r, h // r, w // r))


def _pair(value, name: str) -> tuple:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"Input and {name} must have the same number of spatial dimensions, but got input "
                             f"with spatial dimensions of [2] and {name} of length {len(value)}")
        return tuple(value)
    return (value, value)


def _nearest_indices(in_size: int, out_size: int, scale: float | None) -> np.ndarray:
    """PyTorch's nearest source index: dst // 2 when the size doubles, else floor(dst * s) in
    float32 with s = 1/scale_factor when one was given (else in/out), clipped to the last row."""
    dst = np.arange(out_size, dtype=np.int64)
    if out_size == 2 * in_size:
        return dst >> 1
    s = np.float32(1.0 / scale if scale is not None else in_size / out_size)
    return np.minimum(np.floor(dst.astype(np.float32) * s).astype(np.int64), in_size - 1)


def _linear_matrix(in_size: int, out_size: int, scale: float | None, align_corners: bool) -> np.ndarray:
    """M[o, i]: the weight of input i in output o of linear interpolation, PyTorch's source index."""
    dst = np.arange(out_size, dtype=np.float64)
    if align_corners:
        src = dst * ((in_size - 1) / (out_size - 1) if out_size > 1 else 0.0)
    else:
        s = 1.0 / scale if scale is not None else in_size / out_size
        src = np.maximum(s * (dst + 0.5) - 0.5, 0.0)
    low = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    frac = src - low
    matrix = np.zeros((out_size, in_size))
    np.add.at(matrix, (np.arange(out_size), low), 1.0 - frac)
    np.add.at(matrix, (np.arange(out_size), high), frac)
    return matrix


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None, antialias: bool = False) -> Tensor:
    """Resize the two spatial dims of an (N, C, H, W) input. nearest gathers rows and columns;
    bilinear multiplies by two constant interpolation matrices (so its gradient is two matmuls)."""
    if mode not in ("nearest", "bilinear"):
        raise ValueError(f"graphc's interpolate supports mode 'nearest' and 'bilinear', not {mode!r}")
    if input.ndim != 4:
        raise ValueError(f"graphc's interpolate takes 4-D (N, C, H, W) input, got {input.ndim}-D")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if antialias:
        raise ValueError("graphc's interpolate does not support antialias=True")
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined" if size is not None
                         else "either size or scale_factor should be defined")
    in_sizes = tuple(input.shape[2:])
    if size is not None:
        out_sizes, scales = tuple(int(s) for s in _pair(size, "size")), (None, None)
    else:
        factors = tuple(float(f) for f in _pair(scale_factor, "scale_factor"))
        out_sizes = tuple(int(math.floor(n * f)) for n, f in zip(in_sizes, factors))
        scales = (None, None) if recompute_scale_factor else factors
    if min(*in_sizes, *out_sizes) <= 0:
        raise RuntimeError(f"Input and output sizes should be greater than 0, but got input (H: {in_sizes[0]}, "
                           f"W: {in_sizes[1]}) output (H: {out_sizes[0]}, W: {out_sizes[1]})")
    x = input
    for axis, (n, m, scale) in enumerate(zip(in_sizes, out_sizes, scales)):
        if n == m:  # PyTorch copies an axis whose size is unchanged, whatever the scale
            continue
        if mode == "nearest":  # the resized axis first, gather rows, and back
            order = (2 + axis, 0, 1, 3 - axis)
            picked = fn.gather_rows(fn.permute(x, order), as_tensor(_nearest_indices(n, m, scale)))
            x = fn.permute(picked, tuple(int(i) for i in np.argsort(order)))
        else:
            matrix = as_tensor(_linear_matrix(n, m, scale, bool(align_corners)).astype(str(x.dtype)))
            if axis == 1:  # columns: x @ M^T
                x = fn.matmul(x, matrix, False, True)
            else:  # rows: (x^T @ M^T)^T
                x = fn.transpose(fn.matmul(fn.transpose(x, 2, 3), matrix, False, True), 2, 3)
    return x
# --- normalisation ------------------------------------------------------------------------------
# Written with op functions only (mean, sub, mul, div, sqrt), so their gradients come from the op
# table. An eval batch norm is x * scale + shift with scale and shift made of parameters and
# buffers alone: passes/fold_batch_norm.py folds that into a preceding matmul's weights.
def _rsqrt(var: Tensor, eps: float) -> Tensor:
    return fn.div(1.0, fn.sqrt(fn.add(var, eps)))
def _moments(input: Tensor, dims: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Mean and biased variance over `dims`, kept as size-1 dims."""
    mean = fn.mean(input, dims, keepdim=True)
    centered = fn.sub(input, mean)
    return mean, fn.mean(fn.mul(centered, centered), dims, keepdim=True)
def _per_channel(t: Tensor | None, ndim: int) -> Tensor | None:
    """A [C] tensor shaped to broadcast over dim 1 of an ndim-d [N, C, ...] input."""
    return None if t is None else fn.reshape(t, (t.shape[0],) + (1,) * (ndim - 2))
def _affine(x: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    x = x if weight is None else fn.mul(x, weight)
    return x if bias is None else fn.add(x, bias)
def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float | Tensor = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise over every dim but 1 (the channels). Training uses the batch's mean and biased
    variance and, when running statistics are given, updates them in place with
    momentum * batch + (1 - momentum) * running (the unbiased variance); otherwise the running
    statistics are used. `momentum` may be a 0-d tensor (BatchNorm's cumulative average)."""
    if input.ndim < 2:
        raise ValueError(f"batch_norm expects an input of at least 2 dims (N, C, ...), got {input.ndim}D")
    dims = (0,) + tuple(range(2, input.ndim))
    count = input.numel() // input.shape[1]
    if not training:
        if running_mean is None or running_var is None:
            raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
        scale = _rsqrt(running_var, eps)
        scale = scale if weight is None else fn.mul(weight, scale)
        shift = fn.neg(fn.mul(running_mean, scale))
        shift = shift if bias is None else fn.add(bias, shift)
        return fn.add(fn.mul(input, _per_channel(scale, input.ndim)), _per_channel(shift, input.ndim))
    if count <= 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {input.shape}")
    mean, var = _moments(input, dims)
    if running_mean is not None or running_var is not None:
        kept = 1.0 - momentum if isinstance(momentum, (int, float)) else fn.sub(1.0, momentum)
        for running, batch in ((running_mean, mean), (running_var, fn.mul(var, count / (count - 1)))):
            if running is not None:
                batch = fn.reshape(fn.detach(batch), tuple(running.shape))
                running.copy_(fn.add(fn.mul(batch, momentum), fn.mul(running, kept)))
    normalized = fn.mul(fn.sub(input, mean), _rsqrt(var, eps))
    return _affine(normalized, _per_channel(weight, input.ndim), _per_channel(bias, input.ndim))
def _shape_tuple(shape: int | Any) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)
def layer_norm(input: Tensor, normalized_shape: Any, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the last len(normalized_shape) dims (biased variance), then scale and shift."""
    shape = _shape_tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape or len(shape) > input.ndim:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape "
                           f"[*, {', '.join(map(str, shape))}], but got input of size{list(input.shape)}")
    mean, var = _moments(input, tuple(range(input.ndim - len(shape), input.ndim)))
    return _affine(fn.mul(fn.sub(input, mean), _rsqrt(var, eps)), weight, bias)
def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise each sample's channels in `num_groups` groups, then a per-channel scale and shift."""
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {input.ndim}")
    n, channels = input.shape[0], input.shape[1]
    if channels % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, but got input "
                           f"of shape {input.shape} and num_groups={num_groups}")
    grouped = fn.reshape(input, (n, num_groups, -1))
    mean, var = _moments(grouped, (2,))
    normalized = fn.reshape(fn.mul(fn.sub(grouped, mean), _rsqrt(var, eps)), tuple(input.shape))
    return _affine(normalized, _per_channel(weight, input.ndim), _per_channel(bias, input.ndim))
