"""Fixtures for the robustness suite: one fitted reference checkpoint shared by the module."""

from __future__ import annotations

import pytest

from miad.cli import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from conftest import make_mvtec_tree

    root = make_mvtec_tree(tmp_path_factory.mktemp("robust-data"))
    out = tmp_path_factory.mktemp("robust-run")
    assert main(["train", "--method", "ref_mean", "--data", str(root), "--out", str(out)]) == 0
    return out / "model.pt"
