"""TensorBoard: event files in `<folder>/tensorboard/` (`tensorboard --logdir OUT`); the step is the epoch.

A resumed run must neither duplicate nor drop an epoch, whatever moment the kill came. TensorBoard's own answer,
`purge_step`, hides an earlier file's events from a step on, but only when the new file sorts after the old one,
and event file names carry whole seconds and the process id, so a quick resume can sort first; and the killed
process may have saved an epoch's state without logging it. So the back-end replays instead: it removes the
folder's earlier event files and logs the resume state's finished epochs again into a new file (with
`purge_step=0`, so that even an old file left in place would be hidden), then continues. The state's history is
the record of what happened; only the original wall-clock times of the replayed epochs are lost.
TensorBoard's writer (the `tensorboard` extra) is imported where it is used: miad works without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from miad.tracking.names import flat_params, scalar_name

FOLDER = "tensorboard"
_EVENTS = "events.out.tfevents.*"


class TensorBoardBackend:
    wants_images = True

    def __init__(self, run: Any) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.dir = Path(run.folder) / FOLDER
        for old in self.dir.glob(_EVENTS):  # superseded by the replay below
            old.unlink()
        self.writer = SummaryWriter(str(self.dir), purge_step=0, flush_secs=30)
        self.params: dict[str, Any] | None = None
        self.metric_names: set[str] = set()
        for row in run.done:
            self.log_epoch(int(row["epoch"]), {k: v for k, v in row.items() if k != "epoch"})

    def log_params(self, params: dict[str, Any]) -> None:
        self.params = flat_params(params)  # written at close: the HPARAMS tab lists the scalars logged by then

    def _write_hparams(self) -> None:
        """Hyper-parameters for TensorBoard's HPARAMS tab, comparing runs by every scalar they logged."""
        from torch.utils.tensorboard.summary import hparams

        for summary in hparams(self.params, {m: 0.0 for m in sorted(self.metric_names)}):
            self.writer.file_writer.add_summary(summary)

    def log_epoch(self, epoch: int, scalars: dict[str, float]) -> None:
        for key, value in scalars.items():
            self.writer.add_scalar(scalar_name(key), value, global_step=epoch)
            self.metric_names.add(scalar_name(key))
        self.writer.flush()  # an epoch is seen at once (and a kill loses none of the logged ones)

    def log_images(self, images: dict[str, np.ndarray], step: int) -> None:
        for name, image in images.items():
            self.writer.add_image(name, image, global_step=step, dataformats="HWC")
        self.writer.flush()

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, global_step=step)
            self.metric_names.add(name)
        self.writer.flush()

    def close(self, status: str) -> None:
        if status == "FINISHED" and self.params is not None:
            self._write_hparams()
        self.writer.close()
