"""The README's Python example runs as written (on the built-in mini-MIAD, in a scratch folder)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import miad

README = Path(__file__).resolve().parents[1] / "README.md"


def python_example() -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"From Python.*?```python\n(.*?)```", text, flags=re.S)
    assert found, "README.md has no ```python block after 'From Python'"
    return found.group(1)


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = python_example()
    for call in ("miad.load_samples(", "miad.create(", ".fit(", "miad.evaluate(det, test)", "det.save(", "miad.load("):
        assert call in code, f"the README example no longer shows {call}"
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)  # noqa: S102  (our own README)
    det, ev = scope["det"], scope["ev"]
    assert isinstance(det, miad.Detector) and det.fitted and (tmp_path / "patchcore.pt").is_file()
    assert ev.metrics.mean["image_auroc"] > 0.5 and len(ev.rows) == len(scope["test"])
