"""Argument helpers shared by the sub-commands (names follow the API parameters)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="compute device")


def add_loader(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=int, default=None, help="override the preset's batch size")
    p.add_argument("--num-workers", type=parse_workers, default="auto",
                   help="data-loading worker processes, or auto (default: the usable cores, at most 8)")


def parse_workers(text: str) -> int | str:
    """--num-workers: 'auto' (resolved where a loader is made: miad.data.feed.resolve_workers) or an integer >= 0."""
    if text.strip() == "auto":
        return "auto"
    return whole_number(text, "'auto' or an integer >= 0")


def whole_number(text: str, expected: str = "a whole number (0, 1, 2, ...)") -> int:
    """An argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def add_seed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's)")


def add_logger(p: argparse.ArgumentParser) -> None:
    p.add_argument("--logger", action="append", metavar="NAME",
                   help="none | csv | tensorboard | mlflow; repeatable or a comma list (default csv: metrics.csv)")


def csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def check_output_folder(path: str | Path) -> Path:
    """--out must be a folder or not exist yet: an existing file there is refused (nothing is created)."""
    from miad.errors import ConfigError

    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is an existing file, not a folder; pass a folder path")
    return out


def output_folder(path: str | Path) -> Path:
    """--out as a folder (created); an existing file there is refused instead of failing in mkdir."""
    from miad.errors import ConfigError

    out = check_output_folder(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the --out folder {out} ({exc.strerror}); pass a writable folder") from None
    return out
