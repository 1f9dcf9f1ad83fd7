"""Exceptions that carry where in the model they happened."""


class TraceError(RuntimeError):
    """Tracing met something a static graph cannot hold (control flow on tensor values, ...)."""


class InputError(ValueError):
    """A compiled callable was given inputs of the wrong shape, dtype or number."""


class CheckpointError(ValueError):
    """A checkpoint file graphc.load cannot read: not a checkpoint, truncated, or not matching the schema."""
