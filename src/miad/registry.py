"""One explicit registry: method name -> Detector class (with its Config and presets).

Methods register themselves with `@register` in `miad/methods/<name>/detector.py`; the sub-packages are
imported on first use so that `import miad` stays light.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

from miad.checkpoint import read_checkpoint
from miad.config import BaseConfig, apply_overrides
from miad.detector import Detector
from miad.errors import CheckpointError, ConfigError

_METHODS: dict[str, type[Detector]] = {}
_discovered = False


def register(cls: type) -> type:
    """Class decorator: registers a Detector subclass under `cls.name`."""
    for attr in ("name", "Config", "PRESETS"):
        if not hasattr(cls, attr):
            raise TypeError(f"{cls.__name__} must define {attr} to be registered")
    _METHODS[cls.name] = cls
    return cls


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    import miad.methods as methods  # here: the methods (and timm) load on first use, not with `import miad`

    for info in pkgutil.iter_modules(methods.__path__):
        has_detector = (Path(methods.__path__[0]) / info.name / "detector.py").is_file()
        if info.ispkg and not info.name.startswith("_") and has_detector:
            importlib.import_module(f"miad.methods.{info.name}.detector")
    _discovered = True


def list_methods() -> list[str]:
    _discover()
    return sorted(_METHODS)


def get_method(name: str) -> type[Detector]:
    _discover()
    if name not in _METHODS:
        raise ConfigError(f"unknown method {name!r}; valid methods: {', '.join(sorted(_METHODS)) or '(none)'}")
    return _METHODS[name]


def list_presets(name: str) -> list[str]:
    return list(get_method(name).PRESETS)


def make_config(name: str, preset: str = "quick", **overrides: Any) -> BaseConfig:
    cls = get_method(name)
    if preset not in cls.PRESETS:
        raise ConfigError(f"unknown preset {preset!r} for {name}; valid presets: {', '.join(cls.PRESETS)}")
    return apply_overrides(cls.PRESETS[preset], overrides)


def create(name: str, preset: str = "quick", *, pretrained: bool = True, **overrides: Any) -> Detector:
    """A new, unfitted detector: `create("patchcore", "paper", max_train_images=None)`."""
    return get_method(name)(make_config(name, preset, **overrides), pretrained=pretrained)


def load(path: str | Path, device: str = "cpu", expect_method: str | None = None) -> Detector:
    """A fitted detector from a checkpoint written by `Detector.save` (weights_only loading)."""
    ckpt = read_checkpoint(path)
    if expect_method is not None and ckpt["method"] != expect_method:
        raise CheckpointError(f"checkpoint {path} is a {ckpt['method']} model, expected {expect_method}")
    return get_method(ckpt["method"]).from_state(ckpt, source=path).to(device)
