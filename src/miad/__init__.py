"""miad: unsupervised visual anomaly detection for outdoor maintenance inspection (MIAD, arXiv 2211.13968).

Public API: `create`, `load`, `list_methods`, `list_presets`, `load_samples`, `split_samples`, `evaluate`,
`Prediction`, `Sample`, `MiadError`, `NotFittedError`. Imports are lazy so that `import miad` (and the CLI's start) does not load torch.
"""

__version__ = "0.1.0"

__all__ = [
    "MiadError",
    "NotFittedError",
    "Prediction",
    "Sample",
    "__version__",
    "create",
    "evaluate",
    "list_methods",
    "list_presets",
    "load",
    "load_samples",
    "split_samples",
]

_LAZY = {
    "create": "miad.registry", "list_methods": "miad.registry", "list_presets": "miad.registry",
    "load": "miad.registry", "evaluate": "miad.metrics", "Prediction": "miad.types", "Sample": "miad.types",
    "MiadError": "miad.errors", "NotFittedError": "miad.errors", "load_samples": "miad.data.index",
    "split_samples": "miad.data.index",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'miad' has no attribute {name!r}")
