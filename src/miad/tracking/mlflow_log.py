"""MLflow: params, per-epoch metrics, test metrics and images of one run, offline by default.

The store is the one MLFLOW_TRACKING_URI names, else MLflow's own default kind, a SQLite file, placed in the
command's --out (`OUT/mlflow.db`; `mlflow ui --backend-store-uri sqlite:///OUT/mlflow.db`); the artifacts of a
SQLite store go beside it (`mlartifacts/`). A run's MLflow run id is kept in its resume state folder, so a
resumed run logs into the same MLflow run; epochs the killed process saved but had not logged yet are logged
then (MLflow keeps every value logged at a step, so an epoch already there is never logged twice). `--restart`
removes that folder: a new MLflow run. SQLite on a network file system is unsafe with several writers: a
warning says so.
mlflow (the `mlflow` extra) is imported where it is used: miad works without it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from miad.atomic import write_json_atomic
from miad.errors import ConfigError
from miad.tracking.names import flat_params, scalar_name

RUN_FILE = "mlflow_run.json"
DB_FILE = "mlflow.db"
ARTIFACTS = "mlartifacts"
NETWORK_FILE_SYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph", "glusterfs",
                        "fuse.sshfs", "fuse.glusterfs", "9p", "afs"}
_warned: set[str] = set()


def tracking_uri(store: Path) -> str:
    """MLFLOW_TRACKING_URI when set, else a SQLite file in `store` (MLflow's default kind, not its cwd)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(Path(store) / DB_FILE).resolve()}"


def network_file_system(path: Path, mounts: str = "/proc/mounts") -> str | None:
    """The type of the network file system holding `path`, or None (local, or unknown)."""
    try:
        lines = Path(mounts).read_text().splitlines()
    except OSError:
        return None
    target, best, kind = str(Path(path).resolve()), "", None
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, kind = point, parts[2]
    return kind if kind in NETWORK_FILE_SYSTEMS else None


def _warn_if_sqlite_on_network(uri: str) -> None:
    if not uri.startswith("sqlite:///") or uri in _warned:
        return
    _warned.add(uri)
    db = Path(uri[len("sqlite:///"):])
    kind = network_file_system(db.parent)
    if kind:
        print(f"warning: the MLflow SQLite store {db} is on a network file system ({kind}); several workers "
              "writing it at once can corrupt it: set MLFLOW_TRACKING_URI to an MLflow server", file=sys.stderr)


def mlflow_name(name: str) -> str:
    """A metric or artifact name MLflow accepts (letters, digits, _ - . / and spaces; at most 250 characters):
    categories named after a user's folders may hold other characters."""
    return re.sub(r"[^/\w.\- ]", "_", name)[:250]


def _artifact_root(uri: str) -> str | None:
    """Beside a SQLite store (MLflow's own choice, ./mlruns, would land in whatever folder miad runs from); a
    server or a file store decides for itself."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri[len("sqlite:///"):]).parent / ARTIFACTS).resolve().as_uri()


class MlflowBackend:
    wants_images = True

    def __init__(self, run: Any) -> None:
        from mlflow.exceptions import MlflowException

        uri = tracking_uri(run.store)
        try:
            self._open(run, uri)
        except MlflowException as exc:  # an unreachable server, an unknown scheme, a damaged store
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"cannot log to the MLflow store {uri} ({first}); fix MLFLOW_TRACKING_URI or choose "
                              "another --logger") from None

    def _open(self, run: Any, uri: str) -> None:
        from mlflow import MlflowClient

        for name in ("mlflow.store.db.utils", "alembic"):  # database set-up chatter on the first run
            logging.getLogger(name).setLevel(logging.WARNING)
        _warn_if_sqlite_on_network(uri)
        self.client = MlflowClient(uri)
        self.id_file = Path(run.state_dir) / RUN_FILE
        reused = self._reuse(uri)
        self.resumed = reused is not None
        self.run_id = reused or self._create(run, uri)
        logged = {m.step for m in self.client.get_metric_history(self.run_id, scalar_name("train_loss"))}
        for row in run.done:  # the epochs a killed process saved but did not log
            if int(row["epoch"]) not in logged:
                self.log_epoch(int(row["epoch"]), {k: v for k, v in row.items() if k != "epoch"})

    def _reuse(self, uri: str) -> str | None:
        """The stored MLflow run of this (resumed) run, set running again; None if there is none to reuse."""
        from mlflow.exceptions import MlflowException

        try:
            stored = json.loads(self.id_file.read_text(encoding="utf-8"))
            if stored.get("tracking_uri") != uri:
                return None
            found = self.client.get_run(stored["run_id"])
        except (OSError, ValueError, KeyError, AttributeError, MlflowException):
            return None
        if found.info.lifecycle_stage == "deleted":
            return None
        self.client.update_run(found.info.run_id, status="RUNNING")
        return found.info.run_id

    def _create(self, run: Any, uri: str) -> str:
        created = self.client.create_run(self._experiment(run), run_name=run.run_name, tags=dict(run.tags))
        write_json_atomic(self.id_file, {"run_id": created.info.run_id, "tracking_uri": uri})
        return created.info.run_id

    def _experiment(self, run: Any) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(run.experiment)
        if found is None:
            try:
                return self.client.create_experiment(run.experiment, _artifact_root(self.client.tracking_uri))
            except MlflowException:  # created meanwhile by another worker
                found = self.client.get_experiment_by_name(run.experiment)
                if found is None:
                    raise
        if found.lifecycle_stage == "deleted":
            self.client.restore_experiment(found.experiment_id)
        return found.experiment_id

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        if not self.resumed:  # MLflow params are written once; a resumed run has them already
            self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in flat_params(params).items()])

    def log_epoch(self, epoch: int, scalars: dict[str, float]) -> None:
        self.log_metrics({scalar_name(k): v for k, v in scalars.items()}, epoch)

    def log_images(self, images: dict[str, np.ndarray], step: int) -> None:
        for name, image in images.items():
            self.client.log_image(self.run_id, image, artifact_file=f"{mlflow_name(name)}.png")

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(mlflow_name(k), v, now, step) for k, v in metrics.items()]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def close(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status)
