"""`miad train --logger ...`: what TensorBoard, MLflow and metrics.csv hold, read back with their own readers; a
killed and resumed run logs every epoch exactly once; --restart starts new logs; only rank 0 logs."""

from __future__ import annotations

import csv
import json
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from miad.cli import main

ALL = ["--logger", "csv", "--logger", "tensorboard,mlflow"]


def _train(data: Path, out: Path, *extra: str) -> int:
    return main(["train", "--method", "ref_ae", "--data", str(data), "--set", "epochs=3", "--out", str(out), *extra])


def _events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def _steps(acc, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _history(out: Path) -> list[dict]:
    return json.loads((out / "history.json").read_text())["epochs"]


def _csv_epochs(out: Path) -> list[tuple[int, float]]:
    with open(out / "metrics.csv", newline="") as fh:
        return [(int(r["epoch"]), float(r["train_loss"])) for r in csv.DictReader(fh)]


def _mlflow_runs(uri: str, out: Path):
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("miad train")
    runs = client.search_runs([exp.experiment_id], f"tags.out = '{out.resolve()}'") if exp else []
    return client, runs


def _approx(pairs):
    return [(step, pytest.approx(value, rel=1e-6)) for step, value in pairs]


def test_train_logs_epochs_images_and_params(tiny_tree, tmp_path):
    """The default MLflow store: OUT/mlflow.db, artifacts in OUT/mlartifacts."""
    out = tmp_path / "run"
    assert _train(tiny_tree, out, *ALL) == 0
    history = _history(out)
    losses = [(r["epoch"], r["train_loss"]) for r in history]
    assert [r["epoch"] for r in history] == [1, 2, 3]
    acc = _events(out / "tensorboard")
    assert _steps(acc, "loss/train") == _approx(losses)
    assert _steps(acc, "loss/val") == _approx([(r["epoch"], r["val_loss"]) for r in history])
    for tag in ("lr", "speed/images_per_second", "time/epoch_seconds"):
        assert [s for s, _ in _steps(acc, tag)] == [1, 2, 3]
    assert _steps(acc, "lr") == _approx([(1, 1e-3), (2, 1e-3), (3, 1e-3)])
    images = [t for t in acc.Tags()["images"] if t.startswith("heldout/widget_")]
    assert images and all(acc.Images(t)[0].step == 3 and acc.Images(t)[0].width == 32 for t in images)
    from tensorboard.plugins.hparams import plugin_data_pb2

    start = plugin_data_pb2.HParamsPluginData.FromString(
        acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["lr"].number_value == pytest.approx(1e-3) and start.hparams["method"].string_value == "ref_ae"

    client, runs = _mlflow_runs(f"sqlite:///{out / 'mlflow.db'}", out)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    run = runs[0]
    assert run.data.tags["method"] == "ref_ae" and run.data.tags["scenario"] == "widget"
    assert run.data.tags["preset"] == "quick" and run.data.params["lr"] == "0.001"
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss/train")] == _approx(losses)
    threshold = torch.load(out / "model.pt", weights_only=True)["holdout"]["threshold"]
    assert run.data.metrics["fit/threshold"] == pytest.approx(threshold, rel=1e-6)
    logged = [f.path for f in client.list_artifacts(run.info.run_id, "heldout")]
    assert sorted(logged) == sorted(f"{t}.png" for t in images)
    assert (out / "mlartifacts").is_dir() and list((out / "mlartifacts").rglob("heldout/*.png"))
    assert _csv_epochs(out) == _approx(losses)


def _kill(monkeypatch, when: str) -> None:
    """Kill the run once epoch 1's state is saved but before it is logged ('after_save'), or in epoch 2 after
    epoch 1 was logged ('in_epoch_2'): the two moments where a resumed log could lose or repeat an epoch."""
    import miad.train

    real, calls = miad.train._save_state, []

    def save_then_die(*args, **kwargs):
        calls.append(1)
        if when == "in_epoch_2" and len(calls) == 2:
            raise KeyboardInterrupt
        real(*args, **kwargs)
        if when == "after_save":
            raise KeyboardInterrupt

    monkeypatch.setattr(miad.train, "_save_state", save_then_die)


@pytest.mark.parametrize("when", ["after_save", "in_epoch_2"])
def test_killed_and_resumed_run_logs_every_epoch_once(when, tiny_tree, tmp_path, monkeypatch, mlflow_store):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _kill(m, when)
        assert _train(tiny_tree, out, *ALL) == 130
    client, runs = _mlflow_runs(mlflow_store, out)
    assert len(runs) == 1 and runs[0].info.status == "KILLED"
    first_id = runs[0].info.run_id
    assert not (out / "mlflow.db").exists()  # MLFLOW_TRACKING_URI wins
    assert _train(tiny_tree, out, *ALL) == 0
    losses = _approx([(r["epoch"], r["train_loss"]) for r in _history(out)])
    acc = _events(out / "tensorboard")
    for tag in ("loss/train", "loss/val", "lr", "speed/images_per_second", "time/epoch_seconds"):
        assert [s for s, _ in _steps(acc, tag)] == [1, 2, 3], tag
    assert _steps(acc, "loss/train") == losses
    client, runs = _mlflow_runs(mlflow_store, out)
    assert [r.info.run_id for r in runs] == [first_id] and runs[0].info.status == "FINISHED"  # the same run
    for key in ("loss/train", "loss/val", "lr"):
        assert sorted(m.step for m in client.get_metric_history(first_id, key)) == [1, 2, 3], key
    assert [(m.step, m.value) for m in client.get_metric_history(first_id, "loss/train")] == losses
    assert _csv_epochs(out) == losses


def test_another_logger_on_resume_resumes_and_logs_every_epoch(tiny_tree, tmp_path, monkeypatch, capsys):
    """--logger is not part of the run's identity; a logger added on resume still shows the earlier epochs."""
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _kill(m, "in_epoch_2")
        assert _train(tiny_tree, out, "--logger", "none") == 130
    assert not (out / "metrics.csv").exists() and not (out / "tensorboard").exists()
    capsys.readouterr()
    assert _train(tiny_tree, out, "--logger", "tensorboard,csv") == 0
    assert "resuming from" in capsys.readouterr().out
    assert [s for s, _ in _steps(_events(out / "tensorboard"), "loss/train")] == [1, 2, 3]
    assert [e for e, _ in _csv_epochs(out)] == [1, 2, 3]


def test_restart_starts_new_logs(tiny_tree, tmp_path, monkeypatch, mlflow_store):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    monkeypatch.chdir(tmp_path)  # MLflow's own artifact default, ./mlruns, must not be used
    out = tmp_path / "run"
    assert _train(tiny_tree, out, *ALL) == 0
    _, runs = _mlflow_runs(mlflow_store, out)
    old_id = runs[0].info.run_id
    assert main(["train", "--method", "ref_ae", "--data", str(tiny_tree), "--set", "epochs=2", "--out", str(out),
                 *ALL, "--restart"]) == 0
    client, runs = _mlflow_runs(mlflow_store, out)
    new = [r for r in runs if r.info.run_id != old_id]
    assert len(runs) == 2 and len(new) == 1
    assert sorted(m.step for m in client.get_metric_history(new[0].info.run_id, "loss/train")) == [1, 2]
    assert [s for s, _ in _steps(_events(out / "tensorboard"), "loss/train")] == [1, 2]
    assert [e for e, _ in _csv_epochs(out)] == [1, 2]
    beside_store = Path(mlflow_store[len("sqlite:///"):]).parent / "mlartifacts"
    assert len([f.path for f in client.list_artifacts(new[0].info.run_id, "heldout")]) >= 1
    assert list(beside_store.rglob(f"{new[0].info.run_id}/artifacts/heldout/*.png"))
    assert not (tmp_path / "mlruns").exists()


def test_patchcore_logs_its_fit_statistics(tiny_tree, tmp_path):
    out = tmp_path / "pc"
    smoke = ["--set", "image_size=32", "--set", "weights=random", "--set", "coreset_ratio=0.25",
             "--set", "num_neighbors=3"]
    assert main(["train", "--method", "patchcore", "--data", str(tiny_tree), *smoke, "--out", str(out),
                 "--logger", "csv,tensorboard"]) == 0
    acc = _events(out / "tensorboard")
    stats = json.loads((out / "history.json").read_text())
    assert stats["epochs"] == [] and not (out / "metrics.csv").exists()  # no epochs: no rows
    fit = {t: _steps(acc, t) for t in acc.Tags()["scalars"] if t.startswith("fit/")}
    assert {"fit/seconds", "fit/threshold", "fit/bank_size"} <= set(fit), fit
    assert fit["fit/bank_size"][0][0] == 0 and fit["fit/bank_size"][0][1] > 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, data: str, out: str) -> None:
    sys.path.insert(0, str(Path(__file__).parents[1]))
    import reference_methods  # noqa: F401  (registers ref_ae in the child)

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank), OMP_NUM_THREADS="1")
    code = main(["train", "--method", "ref_ae", "--data", data, "--set", "epochs=2", "--device", "cpu",
                 "--logger", "csv,tensorboard", "--out", out])
    assert code == 0


@pytest.mark.slow
def test_only_rank_zero_logs_under_torchrun(tiny_tree, tmp_path):
    out = tmp_path / "ddp"
    mp.spawn(_rank, args=(_free_port(), str(tiny_tree), str(out)), nprocs=2, join=True)
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert [s for s, _ in _steps(_events(out / "tensorboard"), "loss/train")] == [1, 2]
    assert [e for e, _ in _csv_epochs(out)] == [1, 2]
