"""`miad benchmark --logger ...`: one MLflow run per benchmark run under one experiment per benchmark (tagged), with
its epochs, test metrics and Figure A.1 row; TensorBoard and metrics.csv in each run folder; a killed benchmark
resumes into the same logs without repeating an epoch."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from miad.bench import run_benchmark
from miad.bench.figures import run_rows
from miad.bench.rundir import read_result
from miad.bench.tracking import experiment_name

LOGGERS = ("csv", "tensorboard", "mlflow")


def _bench(data: Path, out: Path, methods=("ref_ae", "ref_mean")):
    return run_benchmark(str(data), methods=list(methods), scenarios=["widget"], out=out,
                         overrides={"ref_ae.epochs": 2}, progress=False, loggers=LOGGERS)


def _runs(uri: str, out: Path):
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment_name(out))
    return client, {r.data.tags["method"]: r for r in client.search_runs([exp.experiment_id])}


def _events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_benchmark_logs_each_run_with_its_test_metrics_and_figure_row(bench_tree, tmp_path, monkeypatch,
                                                                      mlflow_store):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    out = tmp_path / "bench"
    _bench(bench_tree, out)
    client, runs = _runs(mlflow_store, out)
    assert sorted(runs) == ["ref_ae", "ref_mean"]
    for method, run in runs.items():
        run_dir = out / "runs" / method / "widget" / "seed0"
        result = read_result(run_dir)
        tags = run.data.tags
        assert (tags["scenario"], tags["seed"], tags["preset"]) == ("widget", "0", "quick") and run.info.status == \
            "FINISHED"
        metrics, mean = run.data.metrics, result["metrics"]["mean"]
        assert metrics["test/mean/image_auroc"] == pytest.approx(mean["image_auroc"], rel=1e-9)
        assert metrics["test/mean/aupro"] == pytest.approx(mean["aupro"], rel=1e-9)
        assert metrics["test/widget/pixel_auroc"] == pytest.approx(result["metrics"]["per_category"]["widget"]
                                                                   ["pixel_auroc"], rel=1e-9)
        logged = Path(client.download_artifacts(run.info.run_id, "figure_a1/widget.png", str(tmp_path / method)))
        assert np.array_equal(np.asarray(Image.open(logged).convert("RGB")), run_rows(run_dir)["widget"])
        acc = _events(run_dir / "tensorboard")
        steps = len(result["history"])
        assert [(e.step, e.value) for e in acc.Scalars("test/mean/image_auroc")] == [
            (steps, pytest.approx(mean["image_auroc"], rel=1e-6))]
        figure = acc.Images("figure_a1/widget")[0]
        assert (figure.width, figure.height) == (4 * 32 + 6, 32)
    ae = runs["ref_ae"].info.run_id
    assert sorted(m.step for m in client.get_metric_history(ae, "loss/train")) == [1, 2]
    with open(out / "runs/ref_ae/widget/seed0/metrics.csv", newline="") as fh:
        assert [r["epoch"] for r in csv.DictReader(fh)] == ["1", "2"]
    assert not (out / "runs/ref_mean/widget/seed0/metrics.csv").exists()  # no epochs


def test_killed_benchmark_resumes_into_the_same_logs(bench_tree, tmp_path, monkeypatch, mlflow_store):
    import miad.train

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    out = tmp_path / "bench"
    real = miad.train._save_state

    def save_then_die(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt  # killed once epoch 1's state is saved, before it is logged

    with monkeypatch.context() as m:
        m.setattr(miad.train, "_save_state", save_then_die)
        with pytest.raises(KeyboardInterrupt):
            _bench(bench_tree, out, methods=["ref_ae"])
    _, runs = _runs(mlflow_store, out)
    killed = runs["ref_ae"].info.run_id
    assert runs["ref_ae"].info.status == "KILLED"
    _bench(bench_tree, out, methods=["ref_ae"])
    client, runs = _runs(mlflow_store, out)
    assert list(runs) == ["ref_ae"] and runs["ref_ae"].info.run_id == killed
    assert sorted(m.step for m in client.get_metric_history(killed, "loss/train")) == [1, 2]
    acc = _events(out / "runs/ref_ae/widget/seed0/tensorboard")
    assert [e.step for e in acc.Scalars("loss/train")] == [1, 2]
