"""Argument helpers shared by the sub-commands (names follow the API parameters)."""

from __future__ import annotations

import argparse


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="compute device")


def add_loader(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=int, default=None, help="override the preset's batch size")
    p.add_argument("--num-workers", type=int, default=0, help="data-loading worker processes")


def add_seed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's)")


def csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]
