"""Cases that used to end in a raw traceback: each ends in one line `error: ...` naming the file and the fix."""

from __future__ import annotations

import os
import pathlib
import sys

import pytest
import torch

from miad.cli import main


def _err(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line[line.index("error: "):] for line in err.splitlines() if "error: " in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def tree(tmp_path):
    from conftest import make_mvtec_tree

    return make_mvtec_tree(tmp_path / "data")


def _deny(monkeypatch, folder: pathlib.Path) -> None:
    """Simulate a folder without read/search permission (the tests run as root, which chmod cannot stop)."""
    real_iterdir, real_stat = pathlib.Path.iterdir, pathlib.Path.stat

    def denied(path: pathlib.Path) -> bool:
        return path == folder or folder in path.parents

    def iterdir(self):
        if denied(self):
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    def stat(self, *, follow_symlinks=True):
        if folder in self.parents:
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, follow_symlinks=follow_symlinks)

    monkeypatch.setattr(pathlib.Path, "iterdir", iterdir)
    monkeypatch.setattr(pathlib.Path, "stat", stat)


@pytest.mark.parametrize("where", ["root", "category"])
def test_unreadable_folder_while_detecting_the_format(where, tree, tmp_path, capsys, monkeypatch):
    folder = tree if where == "root" else tree / "widget"
    _deny(monkeypatch, folder)
    assert main(["train", "--method", "ref_mean", "--data", str(tree), "--out", str(tmp_path / "o")]) == 1
    message = _err(capsys)
    assert str(folder) in message and "permission" in message.lower()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads folders whatever their mode")
def test_unreadable_folder_for_real(tree, tmp_path, capsys):
    (tree / "widget").chmod(0)
    try:
        assert main(["train", "--method", "ref_mean", "--data", str(tree), "--out", str(tmp_path / "o")]) == 1
        assert "widget" in _err(capsys)
    finally:
        (tree / "widget").chmod(0o755)


def test_truncated_onnx(checkpoint, tree, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    onnx_path = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--format", "onnx", "--out", str(onnx_path)]) == 0
    onnx_path.write_bytes(onnx_path.read_bytes()[:300])
    capsys.readouterr()
    assert main(["predict", "--checkpoint", str(onnx_path), str(tree), "--out", str(tmp_path / "p")]) == 1
    message = _err(capsys)
    assert str(onnx_path) in message and "miad export" in message


@pytest.mark.parametrize("command", ["train", "predict", "test", "benchmark"])
def test_out_pointing_at_an_existing_file(command, checkpoint, tree, tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    args = {
        "train": ["train", "--method", "ref_mean", "--data", str(tree)],
        "predict": ["predict", "--checkpoint", str(checkpoint), str(tree)],
        "test": ["test", "--checkpoint", str(checkpoint), "--data", str(tree)],
        "benchmark": ["benchmark", "--data", str(tree), "--methods", "ref_mean", "--quiet"],
    }[command]
    assert main([*args, "--out", str(target)]) == 1
    message = _err(capsys)
    assert str(target) in message and "folder" in message and target.read_text() == "keep me"


def test_export_without_the_export_extra(checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if `pip install miad` without [export]
    assert main(["export", "--checkpoint", str(checkpoint), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 1
    assert "miad[export]" in _err(capsys)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    onnx_file = tmp_path / "given.onnx"
    onnx_file.write_bytes(b"\x08\x07")
    assert main(["predict", "--checkpoint", str(onnx_file), str(tmp_path), "--out", str(tmp_path / "p")]) == 1
    assert "miad[export]" in _err(capsys)


def test_random_bytes_are_not_a_miad_checkpoint(tree, tmp_path, capsys):
    fake = tmp_path / "model.pt"
    fake.write_bytes(os.urandom(4096))
    assert main(["test", "--checkpoint", str(fake), "--data", str(tree)]) == 1
    message = _err(capsys)
    assert "not a miad checkpoint" in message and "tamper" not in message
    evil = tmp_path / "evil.pt"

    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"x": Payload()}, evil)
    assert main(["test", "--checkpoint", str(evil), "--data", str(tree)]) == 1
    assert "refused" in _err(capsys)
