"""The paper-selection protocol's bookkeeping (Lightning EarlyStopping + ModelCheckpoint for anomalib, UniAD's
keep-the-best), its rules' sources, and a run identity that tells the protocols apart. The end-to-end check on
the built-in data is tests/bench/test_protocols.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from miad.errors import ConfigError
from miad.selection import NO_RULE, RULES, SelectionOnTest, SelectionRule, parse_protocols, rule_for
from miad.sources import builtin_methods
from miad.types import Sample


def _replay(rule: SelectionRule, metrics: list[float]) -> SelectionOnTest:
    sel = SelectionOnTest(rule, [Sample(Path("x.png"), 1, None, "c", "crack", "test")])
    sel.resume([{"epoch": rule.every * (i + 1), "test_pixel_auroc": m} for i, m in enumerate(metrics)])
    return sel


def test_anomalib_patience_counts_validations_and_keeps_the_strictly_best() -> None:
    sel = _replay(RULES["reverse_distillation"], [0.70, 0.80, 0.80, 0.79, 0.78])
    # validations at epochs 2..10; 0.80 at epoch 4 is not beaten (a tie is no improvement): three misses stop
    assert (sel.best_epoch, sel.best_metric, sel.stopped_at) == (4, 0.80, 10)
    assert not _replay(RULES["reverse_distillation"], [0.70, 0.69, 0.68, 0.71, 0.70, 0.69]).stopped


def test_uniad_keeps_the_last_of_equal_bests_and_never_stops() -> None:
    sel = _replay(RULES["uniad"], [0.70, 0.90, 0.85, 0.90, 0.10, 0.10, 0.10, 0.10])
    assert (sel.best_epoch, sel.stopped) == (40, False)  # tools/train_val.py: is_best = metric >= best


def test_every_method_has_a_rule_or_a_reason_and_rules_cite_pinned_files() -> None:
    assert sorted([*RULES, *NO_RULE]) == builtin_methods()
    assert (RULES["reverse_distillation"].every, RULES["reverse_distillation"].patience) == (2, 3)
    assert (RULES["uniad"].every, RULES["uniad"].patience) == (10, None)
    assert all(r.source.startswith(("openvinotoolkit/anomalib @ v0.3.7 ", "zhiyuanyou/UniAD @ a5b9d9d "))
               for r in RULES.values())
    assert rule_for("reverse_distillation", "held-out") is None and rule_for("fastflow", "paper-selection") is None


def test_protocol_names_are_checked() -> None:
    assert parse_protocols("held-out, paper-selection") == ["held-out", "paper-selection"]
    with pytest.raises(ConfigError, match="unknown protocol best-on-test; valid: held-out, paper-selection"):
        parse_protocols("best-on-test")


def test_selection_without_anomalous_test_images_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs anomalous test images"):
        SelectionOnTest(RULES["uniad"], [Sample(Path("x.png"), 0, None, "c", "good", "test")])


def test_the_protocol_is_part_of_the_training_identity() -> None:
    from miad.train_out import identity_differences

    held = {"method": "m", "scenarios": ["c"], "config": {}, "data": None}
    chosen = {**held, "protocol": "paper-selection"}
    assert "protocol (held-out there, paper-selection now)" in identity_differences(held, chosen)
    assert not [d for d in identity_differences(chosen, chosen) if "protocol" in d]


def test_miad_train_records_and_checks_the_protocol(tmp_path: Path, monkeypatch, capsys) -> None:
    """The CLI path on a tiny tree, with a rule lent to the test-only ref_ae (validate every epoch, patience 1)."""
    import json

    import torch
    from conftest import make_mvtec_tree

    from miad.cli import main
    from miad.selection import RULES as rules

    monkeypatch.setitem(rules, "ref_ae", SelectionRule(1, 1, False, "test rule"))
    data, out = make_mvtec_tree(tmp_path / "data", "widget", n_train=6), tmp_path / "out"
    cmd = ["train", "--method", "ref_ae", "--data", str(data), "--scenario", "widget", "--set", "epochs=4",
           "--logger", "none", "--out", str(out)]
    assert main([*cmd, "--protocol", "paper-selection"]) == 0
    history = json.loads((out / "history.json").read_text())
    sel = history["selection"]
    assert sel["mark"] == "selected on test" and sel["selected_epoch"] == max(
        (r for r in history["epochs"] if "test_pixel_auroc" in r), key=lambda r: r["test_pixel_auroc"])["epoch"]
    assert "selected on test: kept epoch" in capsys.readouterr().out
    assert torch.load(out / "model.pt", weights_only=True)["identity"]["protocol"] == "paper-selection"
    assert main(cmd) == 1  # the held-out run is another run: refused, naming the protocol
    assert "protocol (paper-selection there, held-out now)" in capsys.readouterr().err
