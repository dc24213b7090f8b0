"""How run values are named for the trackers: history keys as scalar names, config values as hyper-parameters."""

from __future__ import annotations

from typing import Any

# History keys -> tracker scalar names (grouped as TensorBoard shows them); other keys keep their own name.
SCALAR_NAMES = {"train_loss": "loss/train", "val_loss": "loss/val", "lr": "lr",
                "images_per_second": "speed/images_per_second", "seconds": "time/epoch_seconds"}


def scalar_name(key: str) -> str:
    return SCALAR_NAMES.get(key, key)


def flat_params(params: dict[str, Any]) -> dict[str, Any]:
    """Config values as hyper-parameters: numbers, strings and booleans stay; lists and None become text."""
    return {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in params.items()}
