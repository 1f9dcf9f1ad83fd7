"""Utilities around models: `graphc.utils.data` feeds them batches."""
from . import data  # noqa: F401
