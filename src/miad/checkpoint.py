"""Checkpoints are readable dicts, written atomically and loaded with `weights_only=True` (never runs code).

{format, format_version, miad_version, method, config, state_dict, holdout, trained_on, history, identity}
(`identity` is None outside `miad train`; older files lack it.)
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from miad import __version__
from miad.atomic import atomic_save
from miad.errors import CheckpointError

FORMAT = "miad-checkpoint"
FORMAT_VERSION = 1  # bump when the layout changes; older files then fail with a clear message
_ZIP_MAGIC = b"PK\x03\x04"


def read_torch(path: str | Path, what: str = "checkpoint", fix: str = "re-create it with `miad train`",
               mmap: bool = False) -> Any:
    """torch.load with weights_only=True; a missing, foreign, truncated or tampered file raises CheckpointError
    ("{what} {path} ...; {fix}"). `mmap` maps tensors instead of reading them (to look at a large file's keys)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist; pass the model.pt written by `miad train`")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise CheckpointError(f"{what} {path} cannot be read ({exc.strerror}); fix its permissions") from None
    if magic != _ZIP_MAGIC:  # torch.save has written zip archives since PyTorch 1.6; miad never wrote others
        raise CheckpointError(f"{path} is not a miad {what} (not a PyTorch file); {fix}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):
            raise CheckpointError(f"{path} is not a miad {what} (unreadable contents); {fix}") from None
        raise CheckpointError(
            f"{what} {path} contains objects other than tensors and plain values; it was not written by miad or "
            "was tampered with, and is refused"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CheckpointError(f"{what} {path} is truncated or corrupt ({type(exc).__name__}); {fix}") from None


def save_checkpoint(state: dict[str, Any], path: str | Path, identity: dict[str, Any] | None = None) -> None:
    """`state`: `Detector.state()`; `identity`: what `miad train` made the model from (see miad.train_out),
    checked when --out is re-used."""
    atomic_save({"format": FORMAT, "format_version": FORMAT_VERSION, "miad_version": __version__, **state,
                 "identity": identity}, path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    ckpt = read_torch(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a miad checkpoint; pass a model.pt written by `miad train`")
    version = ckpt.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {version} (miad {ckpt.get('miad_version')}); this miad reads "
            f"version {FORMAT_VERSION}: retrain with this version or install the miad that wrote it"
        )
    for key in ("method", "config", "state_dict"):
        if key not in ckpt:
            raise CheckpointError(f"checkpoint {path} lacks '{key}'; it is damaged: re-create it with `miad train`")
    return ckpt
