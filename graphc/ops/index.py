"""gather_rows and scatter_add_rows: rows of a table picked by int64 indices, and the transpose.

gather_rows(table, indices)[p..., r...] = table[indices[p...], r...] (embedding lookups,
nearest-neighbour resampling); scatter_add_rows(values, indices, rows) adds each row of values
into row indices[p] of a zero table of `rows` rows: the gradient of gather_rows, and the other
way round. Indices are assumed in range: callers that take them from users check them first
(check_index).
"""
from __future__ import annotations

import numpy as np

from . import functions as F
from .registry import OpDef, ShapeError, TensorType, register


def _gather_infer(table: TensorType, indices: TensorType) -> TensorType:
    if indices.dtype != "int64":
        raise ShapeError(f"gather_rows: expected int64 indices, got {indices.dtype}")
    if table.ndim < 1:
        raise ShapeError("gather_rows: the table must have at least one dim")
    return TensorType(indices.shape + table.shape[1:], table.dtype)


def _scatter_infer(values: TensorType, indices: TensorType, rows: int) -> TensorType:
    if indices.dtype != "int64":
        raise ShapeError(f"scatter_add_rows: expected int64 indices, got {indices.dtype}")
    if values.shape[:indices.ndim] != indices.shape:
        raise ShapeError(f"scatter_add_rows: values {list(values.shape)} do not start with the indices' "
                         f"shape {list(indices.shape)}")
    return TensorType((int(rows),) + values.shape[indices.ndim:], values.dtype)


def _scatter_reference(values: np.ndarray, indices: np.ndarray, rows: int) -> np.ndarray:
    out = np.zeros((rows,) + values.shape[indices.ndim:], values.dtype)
    np.add.at(out, indices, values)
    return out


register(OpDef("gather_rows", "index", _gather_infer, lambda table, indices: table[indices],
               lambda ins, out, g: (F.scatter_add_rows(g, ins[1], ins[0].shape[0]), None)))
register(OpDef("scatter_add_rows", "index", _scatter_infer, _scatter_reference,
               lambda ins, out, g, rows: (F.gather_rows(g, ins[1]), None)))
