"""The benchmark loop: what a run writes, skipping finished runs, refusing foreign run folders, unified mode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from miad.bench.plan import UNIFIED, method_overrides, plan_runs
from miad.bench.results import read_results
from miad.bench.rundir import RunMismatchError, read_result
from miad.errors import ConfigError


def test_every_output_is_written(bench_run) -> None:
    out = bench_run.out
    for name in ("results.jsonl", "results.csv", "tables.md", "tables.tex", "figure_a1.png", "report.html",
                 "figure_factors.png", "benchmark.json"):
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 0, name
    assert set(bench_run.outputs) >= {"results.jsonl", "tables.md", "figure_a1.png", "report.html"}
    assert (out / "figure_a1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_folder_contents(bench_run) -> None:
    run_dir = bench_run.out / "runs" / "ref_ae" / "widget" / "seed0"
    result = read_result(run_dir)
    assert result["method"] == "ref_ae" and result["setting"] == "widget" and result["seed"] == 0
    assert result["trained_on"] == ["widget"] and result["unified"] is False
    assert result["method_notes"] == {}  # only PatchCore (coreset mode) and DRAEM (texture source) note facts
    assert len(result["history"]) == result["config"]["epochs"] == 6
    assert result["fit_seconds"] > 0 and result["inference_ms_per_image"] > 0
    assert result["memory"]["peak_rss_mb"] > 10
    assert result["git_commit"] and set(result["packages"]) >= {"torch", "torchvision", "timm", "numpy", "miad"}
    assert len(result["holdout"]["pixel_quantiles"]) == 101
    assert result["metrics"]["per_category"]["widget"]["n_defect"] == 3
    assert not (run_dir / "state").exists()  # finished runs drop their training state
    with np.load(run_dir / "maps.npz") as maps:
        assert len(maps.files) == 6
        assert maps[maps.files[0]].dtype == np.float16 and maps[maps.files[0]].shape == (32, 32)
    assert len((run_dir / "scores.csv").read_text().splitlines()) == 7
    assert (run_dir / "config.yaml").is_file()


def test_rows_cover_every_scope(bench_run) -> None:
    rows = read_results(bench_run.out / "results.jsonl")
    scopes = {r["scope"] for r in rows}
    assert scopes == {"category", "defect_type", "group", "factor", "run"}
    factor_subsets = {r["subset"] for r in rows if r["scope"] == "factor"}
    assert factor_subsets == {f"{f}/{b}" for f in ("viewpoint", "surface") for b in ("low", "mid", "high")}
    header = (bench_run.out / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["method", "setting", "seed"] and "aupro" in header


def test_rerun_keeps_finished_runs(bench_run, bench_tree: Path) -> None:
    from miad.bench import run_benchmark

    before = {p: p.read_text() for p in bench_run.out.glob("runs/*/*/seed*/result.json")}
    from bench_child import METHODS, OVERRIDES

    again = run_benchmark(str(bench_tree), methods=METHODS, out=bench_run.out, overrides=OVERRIDES, progress=False)
    assert {p: p.read_text() for p in before} == before
    assert again.rows == bench_run.rows


def test_a_run_folder_of_another_config_is_refused(bench_run, bench_tree: Path) -> None:
    from miad.bench import run_benchmark

    with pytest.raises(RunMismatchError, match=r"runs/ref_ae/gadget/seed0.*config\.epochs"):
        run_benchmark(str(bench_tree), methods=["ref_ae"], out=bench_run.out, progress=False,
                      overrides={"ref_ae.epochs": 2})
    assert (bench_run.out / "benchmark.json").read_text().count('"ref_ae.epochs": 6') == 1  # nothing rewritten


def test_a_run_folder_of_a_changed_data_set_is_refused(tmp_path: Path) -> None:
    """Same path, more images: the finished runs would be stale, so the benchmark refuses to reuse them."""
    from conftest import make_mvtec_tree

    from miad.bench import run_benchmark

    data = make_mvtec_tree(tmp_path / "data", "widget", n_train=6)
    out = tmp_path / "out"
    run_benchmark(str(data), methods=["ref_mean"], scenarios="widget", out=out, progress=False)
    good = data / "widget" / "train" / "good"
    (good / "extra.png").write_bytes((good / "000.png").read_bytes())
    with pytest.raises(RunMismatchError, match=r"runs/ref_mean/widget/seed0.*widget/train/good: 6 files there, 7"):
        run_benchmark(str(data), methods=["ref_mean"], scenarios="widget", out=out, progress=False)


def test_unified_trains_one_model_on_all_categories(bench_tree: Path, tmp_path: Path) -> None:
    from miad.bench import run_benchmark

    result = run_benchmark(str(bench_tree), methods=["ref_mean"], unified=True, out=tmp_path, progress=False)
    runs = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("runs/*/*/seed*"))
    assert runs == ["runs/ref_mean/unified/seed0"]
    doc = json.loads((tmp_path / runs[0] / "result.json").read_text())
    assert doc["trained_on"] == ["gadget", "widget"] and doc["unified"] is True
    cats = {r["category"] for r in result.rows if r["scope"] == "category"}
    assert cats == {"gadget", "widget"}
    assert all(r["trained_on"] == "gadget;widget" for r in result.rows)
    assert "| ref_mean (unified) |" in (tmp_path / "tables.md").read_text()


def test_plan_orders_runs_and_applies_method_overrides() -> None:
    specs = plan_runs(["ref_ae", "ref_mean"], ["a", "b"], "quick", [0, 1], False, {"ref_ae.epochs": 5})
    assert [(s.method, s.setting, s.seed) for s in specs][:4] == [
        ("ref_ae", "a", 0), ("ref_ae", "b", 0), ("ref_ae", "a", 1), ("ref_ae", "b", 1)]
    assert {s.config.epochs for s in specs if s.method == "ref_ae"} == {5}
    assert {s.config.seed for s in specs} == {0, 1}
    unified = plan_runs(["ref_mean"], ["a", "b"], "quick", None, True, {})
    assert [(s.setting, s.categories) for s in unified] == [(UNIFIED, ("a", "b"))]


def test_override_errors_say_how_to_fix() -> None:
    assert method_overrides({"lr": 0.1, "ref_ae.lr": 0.2, "ref_mean.width": 3}, "ref_ae") == {"lr": 0.2}
    with pytest.raises(ConfigError, match="not a method"):
        method_overrides({"nosuch.lr": 1}, "ref_ae")
    with pytest.raises(ConfigError, match=r"--set ref_mean\.KEY=VALUE"):
        plan_runs(["ref_ae", "ref_mean"], ["a"], "quick", None, False, {"width": 4})
    with pytest.raises(ConfigError, match="unknown method"):
        plan_runs(["nosuch"], ["a"], "quick", None, False, {})


def test_a_failing_run_is_recorded_and_retried(bench_tree: Path, tmp_path: Path, monkeypatch) -> None:
    import reference_methods

    from miad.bench import run_benchmark
    from miad.errors import DataError

    real_fit = reference_methods.RefMeanDetector._fit

    def fit_failing_on_gadget(self, train, val, **options):
        if self.trained_on == ["gadget"]:
            raise DataError("gadget: simulated unreadable image")
        return real_fit(self, train, val, **options)

    monkeypatch.setattr(reference_methods.RefMeanDetector, "_fit", fit_failing_on_gadget)
    first = run_benchmark(str(bench_tree), methods=["ref_mean"], out=tmp_path, progress=False)
    assert len(first.failed) == 1 and "runs/ref_mean/gadget/seed0: gadget: simulated" in first.failed[0]
    error = json.loads((tmp_path / "runs/ref_mean/gadget/seed0/error.json").read_text())
    assert {k: error[k] for k in ("error", "type")} == {"error": "gadget: simulated unreadable image",
                                                         "type": "DataError"}
    assert error["host"] and error["claim"]  # which worker failed it
    assert {r["category"] for r in first.rows if r["scope"] == "category"} == {"widget"}
    assert "1 run(s) failed" in (tmp_path / "report.html").read_text()

    monkeypatch.setattr(reference_methods.RefMeanDetector, "_fit", real_fit)
    stale = tmp_path / "runs/ref_mean/gadget/seed0/.maps.npz.x1y2.tmp"  # as a process killed mid-write leaves
    stale.write_bytes(b"half a zip")
    second = run_benchmark(str(bench_tree), methods=["ref_mean"], out=tmp_path, progress=False)
    assert second.failed == [] and not (tmp_path / "runs/ref_mean/gadget/seed0/error.json").exists()
    assert not stale.exists()
    assert {r["category"] for r in second.rows if r["scope"] == "category"} == {"gadget", "widget"}


def test_the_folder_command_is_recorded_once_and_another_is_named(tmp_path: Path) -> None:
    from miad.bench.command import CommandMismatchError, adopt_command

    plan = [{"run": "runs/a/x/seed0", "categories": ["x"], "config": {"epochs": 3, "lr": 0.1}}]
    adopt_command(tmp_path, {"data": "d1"}, plan)
    adopt_command(tmp_path, {"data": "elsewhere"}, plan)  # the data path is recorded, not compared
    assert json.loads((tmp_path / "benchmark.json").read_text())["data"] == "d1"
    other = [{**plan[0], "config": {"epochs": 4, "lr": 0.1}}, {**plan[0], "run": "runs/a/y/seed0"}]
    with pytest.raises(CommandMismatchError) as err:
        adopt_command(tmp_path, {"data": "d1"}, other)
    message = str(err.value)
    assert "runs only here: runs/a/y/seed0" in message and "runs/a/x/seed0: config.epochs (3 there, 4 now)" in message
    assert str(tmp_path / "benchmark.json") in message and "\n" not in message
    (tmp_path / "benchmark.json").write_text('{"data": "d0", "runs": []}')  # an older miad's record: replaced
    adopt_command(tmp_path, {"data": "d1"}, other)
    assert json.loads((tmp_path / "benchmark.json").read_text())["plan"][0]["config"]["epochs"] == 4
