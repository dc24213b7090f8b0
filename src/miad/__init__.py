"""miad: unsupervised visual anomaly detection for outdoor maintenance inspection (MIAD, arXiv 2211.13968).

Public API: `load_samples`, `split_samples`, `create`, `load`, `list_methods`, `list_presets`, `evaluate`
(a detector on samples; the Prediction-level metrics are in `miad.metrics`), `Detector`, `Prediction`, `Sample`,
`MiadError`, `NotFittedError`. The names are imported on first use so that `import miad` (and the CLI's start)
does not load torch.
"""

__version__ = "0.2.0"

__all__ = [
    "Detector",
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

# public name -> (module, attribute)
_LAZY = {
    "create": ("miad.registry", "create"), "list_methods": ("miad.registry", "list_methods"),
    "list_presets": ("miad.registry", "list_presets"), "load": ("miad.registry", "load"),
    "load_samples": ("miad.data.index", "load_samples"), "split_samples": ("miad.data.index", "split_samples"),
    "evaluate": ("miad.evaluation", "evaluate_detector"), "Detector": ("miad.detector", "Detector"),
    "Prediction": ("miad.types", "Prediction"), "Sample": ("miad.types", "Sample"),
    "MiadError": ("miad.errors", "MiadError"), "NotFittedError": ("miad.errors", "NotFittedError"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib  # here: only this lookup needs it

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'miad' has no attribute {name!r}")
