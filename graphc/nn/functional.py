"""Stateless layer functions (`graphc.nn.functional`, imported as F), written with op functions only.

They run eagerly on arrays and record nodes while tracing, so nothing here may look at a tensor's
values. Losses pick target classes with `one_hot` masks rather than gathers: a masked sum is a select,
a product and a reduction, which the compiler already fuses and differentiates.
"""
from __future__ import annotations

import warnings
from typing import Any

from ..ops import functions as fn
from ..tensor import Tensor

def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input @ weight.T + bias; the transpose is a matmul flag, never a copy."""
    if input.ndim == 1:
        return linear(input.unsqueeze(0), weight, bias).squeeze(0)
    out = fn.matmul(input, weight, False, True)
    return out if bias is None else fn.add(out, bias)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return fn.relu(input)


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


def _reduction(reduction: str, size_average: bool | None = None, reduce: bool | None = None) -> str:
    """PyTorch's deprecated size_average/reduce flags, when given, override `reduction`."""
    if size_average is not None or reduce is not None:
        if reduce is False:
            return "none"
        return "sum" if size_average is False else "mean"
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


def mse_loss(input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
             reduction: str = "mean") -> Tensor:
    if tuple(input.shape) != tuple(target.shape):
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
                      "This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", stacklevel=2)
    diff = fn.sub(input, target)
    return _reduce(fn.mul(diff, diff), _reduction(reduction, size_average, reduce))


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


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: bool | None = None,
             ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """-weight[t] * input[t] per sample; 'mean' divides by the summed weights of counted samples."""
    reduction = _reduction(reduction, size_average, reduce)
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
    logp = _classes_last(fn.log_softmax(input, 0 if input.ndim == 1 else 1))
    classes = logp.shape[-1]
    if target.dtype.is_floating_point:
        return _soft_target_loss(logp, _classes_last(target), weight, reduction, label_smoothing)
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
    if tuple(logp.shape) != tuple(target.shape):
        raise ValueError("Expected input and target shapes to match for class-probability targets, "
                         f"got {list(logp.shape)} and {list(target.shape)}")
    classes = logp.shape[-1]
    if label_smoothing > 0.0:
        target = fn.add(fn.mul(target, 1.0 - label_smoothing), label_smoothing / classes)
    product = fn.mul(logp, target)
    if weight is not None:
        product = fn.mul(product, weight)
    return _reduce(fn.neg(fn.sum(product, -1)), reduction)


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
