"""Method configurations: one frozen dataclass per method, named presets, validated overrides.

Every method's `Config` derives from `BaseConfig` (the fields every detector understands) and adds its own.
`--set key=value` values are parsed as JSON (falling back to a plain string) and checked against the field's
type; unknown keys fail listing the valid ones.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from miad.atomic import write_text_atomic
from miad.data.io import RESIZE_MODES
from miad.errors import ConfigError
from miad.preprocess import NORMALIZATIONS


@dataclass(frozen=True)
class BaseConfig:
    # --- input
    image_size: int = 256  # square input side; images are resized without keeping aspect ratio (as the paper)
    normalize: str = "imagenet"  # key of miad.preprocess.NORMALIZATIONS
    # how images are decoded and resized (miad.data.io.load_rgb): "pil_draft" (JPEG draft decoding + antialiased
    # PIL bilinear: fast, the quick presets) | "pil" (full decode, antialiased PIL bilinear) | "opencv" (full
    # decode, cv2 INTER_LINEAR without antialiasing); each paper preset sets what its reference code does
    resize: str = "pil_draft"
    # --- data use
    max_train_images: int | None = None  # random subset of the training set (PatchCore paper: 2,000)
    holdout_fraction: float = 0.1  # normal training images kept out of training for thresholds / validation
    threshold_quantile: float = 0.99  # decision threshold = this quantile of held-out normal image scores
    # --- optimisation (gradient methods; epochs = 0 means no gradient training)
    epochs: int = 0
    batch_size: int = 32
    optimizer: str = "adam"  # adam | adamw
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    lr_milestones: tuple[int, ...] = ()  # epochs after which lr is multiplied by lr_gamma (MultiStepLR)
    lr_gamma: float = 0.1
    grad_clip_norm: float | None = None
    amp: bool = True  # mixed precision on CUDA only; ignored on CPU
    cache_features: bool = False  # keep frozen-backbone features in memory across epochs (no augmentation)
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _check(self.image_size >= 8, "image_size", self.image_size, "an integer >= 8")
        _check(self.batch_size >= 1, "batch_size", self.batch_size, "an integer >= 1")
        _check(self.epochs >= 0, "epochs", self.epochs, "an integer >= 0")
        _check(0.0 <= self.holdout_fraction < 1.0, "holdout_fraction", self.holdout_fraction, "in [0, 1)")
        _check(0.0 <= self.threshold_quantile <= 1.0, "threshold_quantile", self.threshold_quantile, "in [0, 1]")
        _check(self.lr > 0, "lr", self.lr, "> 0")
        _check(self.weight_decay >= 0, "weight_decay", self.weight_decay, ">= 0")
        _check(self.optimizer in ("adam", "adamw"), "optimizer", self.optimizer, "'adam' or 'adamw'")
        _check(
            self.max_train_images is None or self.max_train_images >= 1,
            "max_train_images", self.max_train_images, "null or an integer >= 1",
        )
        _check(
            self.grad_clip_norm is None or self.grad_clip_norm > 0,
            "grad_clip_norm", self.grad_clip_norm, "null or > 0",
        )
        _check(self.resize in RESIZE_MODES, "resize", self.resize, f"one of {list(RESIZE_MODES)}")

        _check(self.normalize in NORMALIZATIONS, "normalize", self.normalize, f"one of {list(NORMALIZATIONS)}")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}


def _check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"config {key}={value!r} is invalid: expected {expected}")


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def parse_set_values(items: list[str] | None) -> dict[str, Any]:
    """['lr=0.001', 'betas=[0.5,0.999]', 'anomaly_source=/data/dtd'] -> dict (JSON, else plain string)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML file of the same keys as --set."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}; check the path") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"config file {p} is not valid YAML ({what}{where}); fix its syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must be a mapping of key: value, got {type(data).__name__}")
    return data


def resolve_overrides(set_items: list[str] | None, config_file: str | None, **flags: Any) -> dict[str, Any]:
    """--config FILE, then --set key=value, then explicit flags (--batch-size, --seed) when given."""
    overrides: dict[str, Any] = load_config_file(config_file) if config_file else {}
    overrides.update(parse_set_values(set_items))
    overrides.update({k: v for k, v in flags.items() if v is not None})
    return overrides


def write_resolved_config(out: Path, det: Any, **extra: Any) -> None:
    """Every output folder receives the resolved config (method, preset values after overrides)."""
    doc = {"method": det.name, **extra, "config": det.config.to_dict()}
    write_text_atomic(out / "config.yaml", yaml.safe_dump(doc, sort_keys=False))


def apply_overrides(config: BaseConfig, overrides: dict[str, Any]) -> BaseConfig:
    """dataclasses.replace with type checks; unknown keys list the valid ones."""
    if not overrides:
        return config
    hints = typing.get_type_hints(type(config))
    valid = [f.name for f in fields(config)]
    coerced = {}
    for key, value in overrides.items():
        if key not in hints or key not in valid:
            raise ConfigError(f"unknown config key {key!r} for {type(config).__name__}; valid keys: {', '.join(valid)}")
        coerced[key] = coerce(key, value, hints[key])
    return dataclasses.replace(config, **coerced)


def coerce(key: str, value: Any, tp: Any) -> Any:
    """Check `value` against annotation `tp` (int, float, str, bool, None, tuple[...], unions)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            try:
                return coerce(key, value, option)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"config {key}={value!r} has the wrong type: expected {_type_name(tp)}")
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin is tuple:
        if isinstance(value, (list, tuple)):
            args = typing.get_args(tp)
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(coerce(key, v, args[0]) for v in value)
            if len(args) == len(value):
                return tuple(coerce(key, v, a) for v, a in zip(value, args))
    elif origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
    raise ConfigError(f"config {key}={value!r} has the wrong type: expected {_type_name(tp)}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
