"""Turning command-line choices into a detector and its data: shared by `train`, `test` and `benchmark`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from miad.atomic import atomic_path
from miad.config import apply_overrides, load_config_file, parse_set_values
from miad.errors import DataError
from miad.types import Sample


def resolve_overrides(set_items: list[str] | None, config_file: str | None, **flags: Any) -> dict[str, Any]:
    """--config FILE, then --set key=value, then explicit flags (--batch-size, --seed) when given."""
    overrides: dict[str, Any] = load_config_file(config_file) if config_file else {}
    overrides.update(parse_set_values(set_items))
    overrides.update({k: v for k, v in flags.items() if v is not None})
    return overrides


def load_samples(data: str, scenario: str | Sequence[str] | None = "all") -> list[Sample]:
    """Index `data` (a path or 'builtin') and keep the requested scenario(s); 'all' keeps every category."""
    from miad.data.index import index_dataset, resolve_data_root

    root = resolve_data_root(data)
    wanted = None
    if isinstance(scenario, str) and scenario != "all":
        wanted = [s.strip() for s in scenario.split(",") if s.strip()]
    elif scenario is not None and not isinstance(scenario, str):
        wanted = list(scenario)
    samples = index_dataset(root, categories=wanted)
    if not samples:
        raise DataError(f"no images found under {root}; run `miad data check {root}` to see why")
    return samples


def split(samples: Sequence[Sample], which: str) -> list[Sample]:
    return [s for s in samples if s.split == which]


def write_text_atomic(path: Path, text: str, errors: str = "strict") -> None:
    """UTF-8; errors="surrogateescape" writes file names that are not UTF-8 back as their own bytes."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", errors=errors)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_resolved_config(out: Path, det: Any, **extra: Any) -> None:
    """Every output folder receives the resolved config (method, preset values after overrides)."""
    doc = {"method": det.name, **extra, "config": det.config.to_dict()}
    write_text_atomic(out / "config.yaml", yaml.safe_dump(doc, sort_keys=False))


def config_from_yaml(path: Path, base: Any) -> Any:
    """Re-create a config written by `write_resolved_config`."""
    return apply_overrides(base, yaml.safe_load(path.read_text())["config"])
