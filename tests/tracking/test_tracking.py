"""The --logger choice and the back-ends on their own: names, missing packages, metrics.csv, the SQLite warning."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

from miad.cli import main
from miad.errors import ConfigError
from miad.tracking import RunInfo, open_tracker, resolve_loggers
from miad.tracking.mlflow_log import _warn_if_sqlite_on_network, mlflow_name, network_file_system


def test_logger_names():
    assert resolve_loggers(None) == ("csv",)
    assert resolve_loggers(["none"]) == ()
    assert resolve_loggers(["csv,tensorboard", "mlflow", "csv"]) == ("csv", "tensorboard", "mlflow")
    with pytest.raises(ConfigError, match="unknown --logger wandb; use one or more of none, csv"):
        resolve_loggers(["wandb"])
    with pytest.raises(ConfigError, match="none cannot be combined"):
        resolve_loggers(["none", "csv"])


@pytest.mark.parametrize("name", ["tensorboard", "mlflow"])
@pytest.mark.parametrize("command", ["train", "benchmark"])
def test_missing_package_is_one_line_naming_the_extra(name, command, tiny_tree, tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == name else real(n, *a))
    args = ["--method", "ref_ae"] if command == "train" else ["--methods", "ref_ae"]
    out = tmp_path / "out"
    assert main([command, *args, "--data", str(tiny_tree), "--logger", f"csv,{name}", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and f"pip install 'miad[{name}]'" in err, err
    assert not (out / "model.pt").exists() and not (out / "runs").exists()  # refused before any training


def _run(folder: Path, done=()) -> RunInfo:
    return RunInfo(folder=folder, state_dir=folder / "state", store=folder, experiment="e", run_name="r",
                   done=[dict(r) for r in done])


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_metrics_csv_one_row_per_epoch_rebuilt_from_the_finished_epochs(tmp_path):
    done = [{"epoch": 1, "train_loss": 0.5, "val_loss": 0.6, "lr": 0.1, "images_per_second": 9.0, "seconds": 1.0},
            {"epoch": 2, "train_loss": 0.4, "val_loss": 0.5, "lr": 0.1, "images_per_second": 9.0, "seconds": 1.0}]
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,train_loss\n1,9\n2,9\n3,9\n")  # a killed run's file with an epoch not in the state
    tracker = open_tracker(["csv"], _run(tmp_path, done))
    assert [r["epoch"] for r in _csv_rows(path)] == ["1", "2"]
    tracker.log_epoch(3, {"epoch": 3, "train_loss": 0.25, "val_loss": 0.3, "lr": 0.01, "images_per_second": 8.0,
                          "seconds": 2.0})
    rows = _csv_rows(path)
    assert list(rows[0]) == ["epoch", "train_loss", "val_loss", "lr", "images_per_second", "seconds"]
    assert [(r["epoch"], float(r["train_loss"])) for r in rows] == [("1", 0.5), ("2", 0.4), ("3", 0.25)]
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temp file and a rename
    tracker.close()
    open_tracker(["csv"], _run(tmp_path))  # a run that starts over (--restart) has no epochs yet
    assert not path.exists()


MOUNTS = """proc /proc proc rw 0 0
/dev/sda1 / ext4 rw 0 0
server:/export /shared nfs4 rw 0 0
/dev/sdb1 /shared/local ext4 rw 0 0
"""


def test_network_file_system_is_recognised_by_the_longest_mount(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text(MOUNTS)
    assert network_file_system(Path("/shared/bench/out"), str(mounts)) == "nfs4"
    assert network_file_system(Path("/shared/local/out"), str(mounts)) is None
    assert network_file_system(Path("/home/me"), str(mounts)) is None
    assert network_file_system(Path("/x"), str(tmp_path / "missing")) is None


def test_sqlite_store_on_a_network_file_system_warns_once(monkeypatch, capsys):
    import miad.tracking.mlflow_log as mlflow_log

    monkeypatch.setattr(mlflow_log, "network_file_system", lambda path: "nfs" if str(path) == "/net" else None)
    _warn_if_sqlite_on_network("sqlite:////net/mlflow.db")
    _warn_if_sqlite_on_network("sqlite:////net/mlflow.db")
    _warn_if_sqlite_on_network("sqlite:////local/mlflow.db")
    _warn_if_sqlite_on_network("http://server:5000")
    err = capsys.readouterr().err
    assert err.count("warning: the MLflow SQLite store /net/mlflow.db is on a network file system (nfs)") == 1
    assert err.count("\n") == 1 and "MLFLOW_TRACKING_URI" in err


def test_category_names_become_valid_mlflow_names():
    from mlflow.utils.validation import _validate_metric_name

    name = mlflow_name("test/pylône (nord)#2:a/image_auroc")
    _validate_metric_name(name)  # raises on a name MLflow refuses
    assert name == "test/pylône _nord__2_a/image_auroc"


def test_an_unusable_mlflow_store_is_one_line(tiny_tree, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "bogus://nowhere")
    out = tmp_path / "out"
    assert main(["train", "--method", "ref_ae", "--data", str(tiny_tree), "--logger", "mlflow", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot log to the MLflow store bogus://nowhere (") and err.count("\n") == 1, err
    assert "MLFLOW_TRACKING_URI" in err and not (out / "model.pt").exists()
