"""The data fingerprint: paths relative to the root, sizes and times; names what differs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from miad.data.fingerprint import data_fingerprint, fingerprint_difference


def _tree(root: Path) -> list[Path]:
    files = []
    for folder, names in (("a/train/good", ("0.png", "1.png")), ("a/test/good", ("0.png",))):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            path = root / folder / name
            path.write_bytes(b"x" * 10)
            os.utime(path, ns=(1_000_000_000, 1_000_000_000))
            files.append(path)
    return files


def test_same_files_same_fingerprint_wherever_the_root_is(tmp_path):
    files = _tree(tmp_path / "one")
    fp = data_fingerprint(tmp_path / "one", files)
    assert fp["files"] == 3 and fp["bytes"] == 30 and set(fp["folders"]) == {"a/train/good", "a/test/good"}
    shutil.copytree(tmp_path / "one", tmp_path / "two")  # copytree keeps the times
    moved = data_fingerprint(tmp_path / "two", [tmp_path / "two" / f.relative_to(tmp_path / "one") for f in files])
    assert moved == fp and fingerprint_difference(fp, moved) is None
    assert data_fingerprint(tmp_path / "one", list(reversed(files))) == fp  # order does not matter


def test_added_removed_and_modified_files_are_named(tmp_path):
    root = tmp_path / "d"
    files = _tree(root)
    fp = data_fingerprint(root, files)
    extra = root / "a/train/good/2.png"
    extra.write_bytes(b"y")
    assert fingerprint_difference(fp, data_fingerprint(root, [*files, extra])) == "a/train/good: 2 files there, 3 now"
    os.utime(files[0], ns=(2_000_000_000, 2_000_000_000))
    assert "a/train/good: files replaced or modified" == fingerprint_difference(fp, data_fingerprint(root, files))
    os.utime(files[0], ns=(1_000_000_000, 1_000_000_000))
    assert fingerprint_difference(fp, data_fingerprint(root, files[:2])) == "a/test/good: gone (1 files there)"
    assert "not recorded" in fingerprint_difference(None, fp)


def test_non_utf8_names_are_fingerprinted(tmp_path):
    root = tmp_path / "d"
    root.mkdir()
    odd = root / os.fsdecode(b"caf\xe9.png")
    odd.write_bytes(b"z")
    fp = data_fingerprint(root, [odd])
    assert fp["files"] == 1 and list(fp["folders"]) == ["."]
