"""`miad cache list|clear` and the loader flags of `miad train`."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from miad.cli import main
from miad.commands._common import parse_workers
from miad.data.cache import DecodedImages


def test_cache_list_and_clear(tmp_path, monkeypatch, capsys):
    from PIL import Image

    monkeypatch.setenv("MIAD_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "img" / "a.png"
    path.parent.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    DecodedImages.open([path], 16, "pil", budget=0).fill()
    assert main(["cache", "list"]) == 0
    out = capsys.readouterr().out
    assert "1 images  16 px  pil" in out and str(tmp_path / "img") in out and "1 entries" in out
    assert main(["cache", "clear"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert main(["cache", "list"]) == 0 and "0 entries" in capsys.readouterr().out


def test_num_workers_takes_auto_or_a_count():
    assert parse_workers("auto") == "auto" and parse_workers("2") == 2
    for bad in ("-1", "many"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected 'auto' or an integer"):
            parse_workers(bad)
