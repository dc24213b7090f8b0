"""miad: unsupervised visual anomaly detection for outdoor maintenance inspection (MIAD, arXiv 2211.13968)."""

from miad.errors import MiadError, NotFittedError
from miad.types import Prediction, Sample

__version__ = "0.1.0"

__all__ = [
    "MiadError",
    "NotFittedError",
    "Prediction",
    "Sample",
    "__version__",
    "create",
    "list_methods",
    "list_presets",
    "load",
]


def __getattr__(name: str):
    # Lazy: importing miad must not import every method (and torch models) up front.
    if name in ("create", "list_methods", "list_presets", "load"):
        from miad import registry

        return getattr(registry, name)
    if name == "evaluate":
        from miad.metrics import evaluate

        return evaluate
    raise AttributeError(f"module 'miad' has no attribute {name!r}")
