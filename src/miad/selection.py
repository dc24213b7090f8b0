"""Training protocols: miad's own (`held-out`, the default) and the peers' test-set model selection
(`paper-selection`, opt-in), so that a user can measure how much picking a model on the test set is worth.

`held-out` never looks at test data while training: the last epoch's weights are the model. `paper-selection`
reproduces what the code MIAD ran did: it validates on the TEST split's pixel AUROC during training and keeps the
best weights (and, for anomalib, stops early). Everything it produces is marked "selected on test". Rules, read
from the originals:
- reverse_distillation (A.2.1 ran anomalib): anomalib v0.3.7 config.yaml has early_stopping patience 3 on
  pixel_AUROC (mode max) and check_val_every_n_epoch 2; the data module validates on the test set
  (create_validation_set false, data/mvtec.py val_dataloader) and tools/train.py tests the best checkpoint
  (ModelCheckpoint on the same metric, strictly better). Lightning's patience counts validations, not epochs.
- uniad (A.2.6 ran the original): experiments/MVTec-AD/config.yaml val_freq_epoch 10 and key_metric
  mean_pixel_auc; tools/train_val.py validates on the test loader and keeps ckpt_best when the metric is >= the
  best so far (ties go to the later epoch); no early stopping.
The other methods had no test-set selection in MIAD's runs, so the protocol changes nothing for them (`NO_RULE`).
The metric is the mean over the trained categories of each category's pixel AUROC (one category: its AUROC).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from miad import distributed as dist
from miad.atomic import atomic_save
from miad.errors import ConfigError
from miad.metrics import pixel_auroc
from miad.preprocess import conform_images
from miad.sources import ANOMALIB, UNIAD

HELD_OUT, PAPER_SELECTION = "held-out", "paper-selection"
PROTOCOLS = (HELD_OUT, PAPER_SELECTION)
MARK = "selected on test"
METRIC = "test_pixel_auroc"  # the history column of the validations
BEST_FILE = "selected_best.pt"


@dataclass(frozen=True)
class SelectionRule:
    every: int  # validate after every `every`-th epoch
    patience: int | None  # stop after this many validations without improvement; None: train every epoch
    ties_to_later: bool  # an equal metric replaces the kept weights (UniAD's >=) or not (Lightning's >)
    source: str


RULES = {
    "reverse_distillation": SelectionRule(2, 3, False, f"{ANOMALIB} anomalib/models/reverse_distillation/"
                                          "config.yaml: early_stopping patience 3, metric pixel_AUROC, "
                                          "check_val_every_n_epoch 2; validation set = test set"),
    "uniad": SelectionRule(10, None, True, f"{UNIAD} experiments/MVTec-AD/config.yaml: val_freq_epoch 10, "
                           "key_metric mean_pixel_auc; tools/train_val.py keeps the best on the test loader (>=)"),
}
NO_RULE = {
    "patchcore": "a single pass over the training images (anomalib v0.3.7 patchcore/config.yaml max_epochs 1): "
                 "nothing to select",
    "fastflow": "MIAD A.2.3 evaluates the final results after 500 epochs (its own implementation, not anomalib)",
    "draem": "MIAD A.2.4 ran VitjanZ/DRAEM, whose train_DRAEM.py keeps the last epoch's weights",
    "unet_ae": "MIAD A.2.5 (its own implementation) states no model selection",
}


def parse_protocols(text: str) -> list[str]:
    """'held-out,paper-selection' -> the list; unknown names fail listing the valid ones."""
    names = list(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    bad = [p for p in names if p not in PROTOCOLS]
    if bad or not names:
        raise ConfigError(f"unknown protocol {', '.join(bad) or repr(text)}; valid: {', '.join(PROTOCOLS)} "
                          "(comma list for both)")
    return names


def rule_for(method: str, protocol: str) -> SelectionRule | None:
    """The selection `protocol` makes `method` do; None when it trains as held-out (the default, or no rule)."""
    return RULES.get(method) if protocol == PAPER_SELECTION else None


def selected_on_test(history: list[dict[str, Any]]) -> bool:
    """Whether a model's training history (checkpoint, history.json) holds test-set validations."""
    return any(METRIC in row for row in history)


def no_rule_note(method: str) -> str:
    return f"{method}: --protocol {PAPER_SELECTION} changes nothing ({NO_RULE.get(method, 'no known rule')})"


class SelectionOnTest:
    """Validates on labelled test images during training and keeps the best weights (the peers' protocol)."""

    def __init__(self, rule: SelectionRule, test: list[Any], state_dir: str | Path | None = None) -> None:
        if not any(s.label == 1 for s in test):
            raise ConfigError("--protocol paper-selection needs anomalous test images with masks to select on")
        self.rule, self.test = rule, test
        self.best_path = Path(state_dir) / BEST_FILE if state_dir else None
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.wait, self.stopped_at = 0, None

    def resume(self, history: list[dict[str, Any]]) -> None:
        """Replay the validations a resumed run's history holds; the kept weights come from BEST_FILE."""
        for row in history:
            if METRIC in row:
                self._update(int(row["epoch"]), float(row[METRIC]))
        if self.best_epoch is not None and self.best_path is not None and self.best_path.is_file():
            self.best_state = torch.load(self.best_path, map_location="cpu", weights_only=True)

    @property
    def stopped(self) -> bool:
        return self.stopped_at is not None

    def after_epoch(self, det: Any, row: dict[str, Any]) -> None:
        """Validate when the rule says so: adds METRIC to `row`; keeps (and saves) the weights when better."""
        epoch = int(row["epoch"])
        if epoch % self.rule.every:
            return
        metric = self._test_pixel_auroc(det)
        row[METRIC] = metric
        if self._update(epoch, metric):
            self.best_state = {k: v.detach().cpu().clone() for k, v in det.model.state_dict().items()}
            # every rank validates (same weights, same decision to stop); rank 0 alone writes
            if self.best_path is not None and dist.is_main():
                atomic_save(self.best_state, self.best_path)

    def restore_best(self, det: Any) -> None:
        if self.best_state is not None:
            det.model.load_state_dict(self.best_state)

    def summary(self, epochs: int) -> dict[str, Any]:
        return {"protocol": PAPER_SELECTION, "mark": MARK, "selected_epoch": self.best_epoch,
                "selected_test_pixel_auroc": self.best_metric, "stopped_early_at": self.stopped_at,
                "max_epochs": epochs, "every": self.rule.every, "patience": self.rule.patience,
                "source": self.rule.source}

    def _update(self, epoch: int, metric: float) -> bool:
        """Lightning EarlyStopping / ModelCheckpoint (or UniAD's >=) bookkeeping; True when the weights are kept."""
        improved = self.best_metric is None or metric > self.best_metric
        keep = improved or (self.rule.ties_to_later and metric == self.best_metric)
        self.wait = 0 if improved else self.wait + 1
        if keep:
            self.best_metric, self.best_epoch = metric, epoch
        if self.rule.patience is not None and self.wait >= self.rule.patience:
            self.stopped_at = epoch
        return keep

    @torch.no_grad()
    def _test_pixel_auroc(self, det: Any) -> float:
        """Mean over categories of the pixel AUROC on the test images, in eval mode, training RNG untouched."""
        det.model.eval()
        values = []
        with torch.random.fork_rng(devices=[det.device] if det.device.type == "cuda" else []):
            for cat in sorted({s.category for s in self.test}):
                samples = [s for s in self.test if s.category == cat]
                maps, masks = [], []
                for batch in DataLoader(det.dataset(samples), batch_size=det.config.batch_size):
                    images = conform_images(batch["image"], det.config.image_size, "paper-selection")
                    _, amap = det.model(images.to(det.device))  # the model's inference graph (still unfitted)
                    maps.append(amap.float().cpu().numpy())
                    masks.append(batch["mask"].numpy())
                values.append(pixel_auroc(np.concatenate(maps), np.concatenate(masks)))
        return float(np.mean(values))

