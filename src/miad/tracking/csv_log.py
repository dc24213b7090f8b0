"""`metrics.csv`: one row per finished epoch, beside history.json, rewritten atomically after every epoch.

The file is rebuilt from the resumed run's finished epochs when the back-end opens, so it always holds exactly
the epochs of the resume state (a stale file of an earlier run in the folder is replaced)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from miad.atomic import write_text_atomic

FILE = "metrics.csv"
COLUMNS = ("epoch", "train_loss", "val_loss", "lr", "images_per_second", "seconds")  # then any others


class CsvBackend:
    wants_images = False

    def __init__(self, run: Any) -> None:
        self.path = Path(run.folder) / FILE
        self.rows: list[dict[str, Any]] = [dict(r) for r in run.done]
        if self.rows:
            self._write()
        else:
            self.path.unlink(missing_ok=True)  # left by an earlier run of this folder: not this run's epochs

    def log_epoch(self, epoch: int, scalars: dict[str, float]) -> None:
        self.rows = [r for r in self.rows if r.get("epoch") != epoch] + [{"epoch": epoch, **scalars}]
        self._write()

    def _write(self) -> None:
        present = {k for r in self.rows for k in r}
        columns = [c for c in COLUMNS if c in present or c == "epoch"]
        columns += sorted(present - set(columns))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _cell(r.get(k)) for k in columns} for r in self.rows)
        write_text_atomic(self.path, buf.getvalue())

    def log_params(self, params: dict[str, Any]) -> None:
        pass  # config.yaml holds them

    def log_images(self, images: dict[str, np.ndarray], step: int) -> None:
        pass  # a CSV holds numbers per epoch only

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        pass  # result.json / `miad test` hold them

    def close(self, status: str) -> None:
        pass


def _cell(value: Any) -> Any:
    return "" if value is None else value
