"""`miad train` on an --out that already holds a model or a resume state: the same run resumes or is kept, any
other run is refused (no stale or hybrid model), and a second `miad train` on the folder is locked out."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from miad.cli import main


@pytest.fixture
def two_cats(tmp_path: Path) -> Path:
    from conftest import make_mvtec_tree

    root = tmp_path / "data"
    make_mvtec_tree(root, "widget", n_train=6)
    make_mvtec_tree(root, "gadget", n_train=6, seed=1)
    return root


def _train(data: Path, out: Path, *extra: str) -> int:
    return main(["train", "--method", "ref_ae", "--data", str(data), "--scenario", "widget", "--set", "epochs=3",
                 "--out", str(out), *extra])


def _error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line[line.index("error: "):] for line in err.splitlines() if "error: " in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _snapshot(out: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and mtime of every file under `out` except the lock file (its holder's pid is rewritten)."""
    return {str(p.relative_to(out)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(out.rglob("*")) if p.is_file() and p.name != ".lock"}


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def _kill_after_first_epoch(monkeypatch) -> None:
    """Simulate a run killed once its first epoch's state is saved (the state file is what a kill leaves)."""
    import miad.train

    real = miad.train._save_state

    def save_then_die(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(miad.train, "_save_state", save_then_die)


def test_identical_rerun_of_a_finished_out_keeps_everything(two_cats, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(two_cats, out) == 0
    before = _snapshot(out)
    capsys.readouterr()
    assert _train(two_cats, out) == 0
    printed = capsys.readouterr().out
    assert f"already trained: {out / 'model.pt'}; pass --restart to train again" in printed
    assert "fitted" not in printed
    assert _snapshot(out) == before  # nothing rewritten


@pytest.mark.parametrize(("change", "named"), [
    (["--scenario", "gadget"], "scenarios"),
    (["--set", "lr=0.01"], "config.lr"),
    (["--set", "width=4"], "config.width"),
])
def test_finished_out_refuses_another_run(change, named, two_cats, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(two_cats, out) == 0
    before = _snapshot(out)
    capsys.readouterr()
    assert _train(two_cats, out, *change) == 1
    message = _error(capsys)
    assert named in message and "--restart" in message and "--out" in message and str(out) in message
    assert _snapshot(out) == before


def test_finished_out_refuses_after_images_were_added(two_cats, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(two_cats, out) == 0
    good = two_cats / "widget" / "train" / "good"
    (good / "extra.png").write_bytes((good / "000.png").read_bytes())
    capsys.readouterr()
    assert _train(two_cats, out) == 1
    message = _error(capsys)
    assert "training data" in message and "widget/train/good" in message and "--restart" in message


def test_restart_trains_again_and_replaces_the_model(two_cats, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(two_cats, out) == 0
    old = _weights(out / "model.pt")
    assert _train(two_cats, out, "--scenario", "gadget", "--restart") == 0
    ckpt = torch.load(out / "model.pt", weights_only=True)
    assert ckpt["trained_on"] == ["gadget"]
    assert any(not torch.equal(old[k], ckpt["state_dict"][k]) for k in old)


def test_killed_run_resumes_only_with_the_same_settings(two_cats, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _kill_after_first_epoch(m)
        assert _train(two_cats, out) == 130
    assert (out / "state" / "train_state.pt").is_file() and not (out / "model.pt").exists()
    capsys.readouterr()
    for change, named in ((["--scenario", "gadget"], "scenarios"), (["--set", "lr=0.01"], "config.lr")):
        assert _train(two_cats, out, *change) == 1  # a hybrid of two scenarios, or the old lr, is refused
        assert named in _error(capsys)
    assert _train(two_cats, out) == 0
    assert "resuming from" in capsys.readouterr().out
    reference = tmp_path / "uninterrupted"
    assert _train(two_cats, reference) == 0
    got, want = _weights(out / "model.pt"), _weights(reference / "model.pt")
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert not (out / "state").exists()  # a finished run keeps no resume state


def test_state_of_another_run_is_refused_even_for_a_fit_without_epochs(two_cats, tmp_path, capsys, monkeypatch):
    """The resume state's identity is checked before anything is trained, whichever the method."""
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _kill_after_first_epoch(m)
        assert _train(two_cats, out) == 130
    capsys.readouterr()
    rc = main(["train", "--method", "ref_mean", "--data", str(two_cats), "--scenario", "widget", "--out", str(out)])
    assert rc == 1 and "method" in _error(capsys)


def test_truncated_resume_state_names_the_folder_to_delete(two_cats, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _kill_after_first_epoch(m)
        assert _train(two_cats, out) == 130
    state = out / "state" / "train_state.pt"
    state.write_bytes(state.read_bytes()[:500])
    capsys.readouterr()
    assert _train(two_cats, out) == 1
    message = _error(capsys)
    assert f"delete {out / 'state'}" in message and "--restart" in message and "miad train" not in message


HOLDER = """
import sys, time
from miad.folder_lock import FolderLock
FolderLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_second_train_on_one_out_is_refused(two_cats, tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert _train(two_cats, out) == 1
        message = _error(capsys)
        assert f"pid {holder.pid}" in message and str(out) in message and "--out" in message
        assert not (out / "model.pt").exists() and not (out / "config.yaml").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert _train(two_cats, out) == 0


def _cli(*args: str) -> subprocess.CompletedProcess:
    src = Path(__file__).resolve().parents[2] / "src"
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "miad", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_cli_reruns_on_one_out(two_cats, tmp_path):
    """What a user types: the same `python -m miad train` twice, then with another scenario, lr, or more images."""
    out = tmp_path / "run"
    base = ["train", "--method", "unet_ae", "--data", str(two_cats), "--preset", "quick", "--device", "cpu",
            "--set", "image_size=32", "--set", "depth=3", "--set", "base_width=4", "--set", "latent_channels=4",
            "--set", "skip_channels=2", "--set", "min_skip_stride=4", "--set", "epochs=1", "--out", str(out)]
    first = _cli(*base, "--scenario", "widget")
    assert first.returncode == 0, first.stderr
    model = (out / "model.pt").read_bytes()
    again = _cli(*base, "--scenario", "widget")
    assert again.returncode == 0 and "already trained" in again.stdout, again.stderr
    for extra, named in ((["--scenario", "gadget"], "scenarios"), (["--scenario", "widget", "--set", "lr=0.01"],
                                                                    "config.lr")):
        proc = _cli(*base, *extra)
        assert proc.returncode == 1 and proc.stderr.startswith("error: ") and named in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1
    good = two_cats / "widget" / "train" / "good"
    rng = np.random.default_rng(5)
    from conftest import write_png

    write_png(good / "new.png", rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    proc = _cli(*base, "--scenario", "widget")
    assert proc.returncode == 1 and "training data" in proc.stderr, proc.stderr
    assert (out / "model.pt").read_bytes() == model
