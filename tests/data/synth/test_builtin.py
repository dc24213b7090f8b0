"""The cached built-in data set (with a tiny spec, so the tests stay fast)."""

from __future__ import annotations

import os

import pytest

import miad.data.builtin as builtin
from miad.data.synth import SYNTH_VERSION, generate

TINY_SPEC = {"scenarios": ["wind_turbine"], "n_train": 2, "n_test_good": 1, "n_test_defect": 1, "size": 32, "seed": 0}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MIAD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(builtin, "BUILTIN_SPEC", TINY_SPEC)
    return tmp_path / "cache"


def test_builtin_spec_is_the_documented_default():
    assert dict(builtin.BUILTIN_SPEC) == {
        "scenarios": None,
        "n_train": 100,
        "n_test_good": 25,
        "n_test_defect": 25,
        "size": 256,
        "seed": 0,
    }
    with pytest.raises(TypeError):
        builtin.BUILTIN_SPEC["size"] = 64  # read-only: copy it to make a smaller set


def test_first_use_generates_into_the_versioned_cache_then_reuses_it(cache, monkeypatch, capsys):
    root = builtin.builtin_root()
    assert "generating the built-in mini-MIAD" in capsys.readouterr().err  # the user knows why they wait
    assert root == cache / f"builtin-v{SYNTH_VERSION}"
    assert (root / "manifest.csv").is_file() and (root / "wind_turbine" / "train" / "good" / "001.png").is_file()
    assert sorted(p.name for p in cache.iterdir()) == [root.name]  # no temporary folder left

    def no_generation(*args, **kwargs):
        raise AssertionError("the cached copy should have been used")

    monkeypatch.setattr(builtin, "build_tree", no_generation)
    assert builtin.builtin_root() == root


def test_refresh_regenerates_the_same_bytes(cache):
    root = builtin.builtin_root()
    before = (root / "wind_turbine" / "test" / "crack" / "000.png").read_bytes()
    (root / "stale.txt").write_text("old")
    assert builtin.builtin_root(refresh=True) == root
    assert not (root / "stale.txt").exists()
    assert (root / "wind_turbine" / "test" / "crack" / "000.png").read_bytes() == before
    assert sorted(p.name for p in cache.iterdir()) == [root.name]


def test_losing_the_race_uses_the_winners_copy(cache, monkeypatch, tmp_path):
    real_build = builtin.build_tree
    final = cache / f"builtin-v{SYNTH_VERSION}"

    def build_while_another_process_finishes_first(tmp, **spec):
        real_build(tmp, **spec)
        generate(final, **spec)  # the other process renames its complete tree into place first
        (final / "winner").write_text("")

    monkeypatch.setattr(builtin, "build_tree", build_while_another_process_finishes_first)
    assert builtin.builtin_root() == final
    assert (final / "winner").exists()
    assert sorted(p.name for p in cache.iterdir()) == [final.name]


def test_cache_defaults_to_the_home_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("MIAD_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert builtin.cache_dir() == tmp_path / ".cache" / "miad"
    assert os.fspath(builtin.cache_dir()).startswith(str(tmp_path))


@pytest.mark.parametrize("stamp", ["0123456789abcdef\n", None])  # another renderer's copy; one from before stamps
def test_a_copy_made_by_another_renderer_is_regenerated(cache, stamp):
    root = builtin.builtin_root()
    assert (root / builtin.FINGERPRINT).read_text().strip() == builtin.generator_fingerprint()
    if stamp is None:
        (root / builtin.FINGERPRINT).unlink()
    else:
        (root / builtin.FINGERPRINT).write_text(stamp)
    (root / "stale.txt").write_text("old")
    assert builtin.builtin_root() == root
    assert not (root / "stale.txt").exists()
    assert (root / builtin.FINGERPRINT).read_text().strip() == builtin.generator_fingerprint()
    assert sorted(p.name for p in cache.iterdir()) == [root.name]


def test_fingerprint_covers_the_spec(monkeypatch):
    default = builtin.generator_fingerprint()
    assert len(default) == 16 and default == builtin.generator_fingerprint()
    monkeypatch.setattr(builtin, "BUILTIN_SPEC", TINY_SPEC)
    assert builtin.generator_fingerprint() != default
