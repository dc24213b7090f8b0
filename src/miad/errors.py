"""Exceptions with messages meant for users: what was expected, what was found, how to fix it."""


class MiadError(Exception):
    """A known, user-fixable problem. The CLI prints it as one line `error: ...` and exits 1."""


class NotFittedError(MiadError, RuntimeError):
    """predict() or save() was called before fit()."""


class DataError(MiadError, ValueError):
    """A data tree, image or mask is unusable; the message names the file and the fix."""


class ConfigError(MiadError, ValueError):
    """An unknown method, preset or config key, or a value of the wrong type or range."""


class CheckpointError(MiadError, ValueError):
    """A checkpoint is unreadable, tampered, of another method or of an incompatible version."""


class WeightsError(MiadError, FileNotFoundError):
    """Pretrained weights are missing and cannot be downloaded."""
