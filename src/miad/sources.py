"""Where every `paper` preset value comes from: one (value, source) pair per config field, kept in each
method's model.py next to the preset it builds, and read by `miad methods --sources`, the README table and the
tests.

A source is one of
- an appendix section of the MIAD paper (arXiv 2211.13968): "MIAD A.2.1: ...";
- a file of an original repository at a pinned tag or commit: "openvinotoolkit/anomalib @ v0.3.7 <path>: ...";
- "miad: ..." for miad's own choices (held-out normals, speed-only knobs, a documented deviation), which say why.
A source starts with its main claim; more may follow ("; " + another claim).
"""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

from miad.errors import ConfigError

# The pinned originals. anomalib v0.3.7 (tag of commit 2f0a87c, 28 Oct 2022) is the last release before MIAD's
# arXiv version; the others are the newest commits of repositories that no longer change.
ANOMALIB = "openvinotoolkit/anomalib @ v0.3.7"
RD4AD = "hq-deng/RD4AD @ 6554076"
PATCHCORE = "amazon-science/patchcore-inspection @ fcaa92f"
FASTFLOW = "gathierry/FastFlow @ 2cf1f2f"
DRAEM = "VitjanZ/DRAEM @ 2dbf673"
UNIAD = "zhiyuanyou/UniAD @ a5b9d9d"
# anomalib's pre-processing, shared by the two methods MIAD ran through it (Reverse Distillation, PatchCore)
ANOMALIB_NORMALIZE = f"{ANOMALIB} anomalib/pre_processing/pre_process.py: A.Normalize (ImageNet mean/std)"
ANOMALIB_RESIZE = (f"{ANOMALIB} anomalib/data/utils/image.py: read_image with cv2.imread (full decode); "
                   "anomalib/pre_processing/pre_process.py: albumentations A.Resize (cv2 INTER_LINEAR, no antialias)")
PINS = (ANOMALIB, RD4AD, PATCHCORE, FASTFLOW, DRAEM, UNIAD)

# One cited claim: an appendix section, a pinned file (repo @ ref path), or miad's own choice.
_CLAIM = re.compile(r"^(MIAD A\.2\.[1-6]: |miad: |(?P<pin>[\w.-]+/[\w.-]+ @ [\w.]+) [\w./-]+\.(py|yaml|txt|md)\b)")

_PIN = re.compile(r"[\w.-]+/[\w.-]+ @ [\w.]+")

Cited = dict[str, tuple[Any, str]]


def cited_preset(config_cls: type, cited: Cited) -> tuple[Any, dict[str, str]]:
    """(the preset built from the cited values, field -> source): each value stays next to its source."""
    return config_cls(**{k: v for k, (v, _) in cited.items()}), {k: s for k, (_, s) in cited.items()}


def builtin_methods() -> list[str]:
    """The registered methods that ship with miad (miad/methods/<name>/), not ones registered by user code."""
    from miad.registry import get_method, list_methods

    return [m for m in list_methods() if get_method(m).__module__.startswith("miad.methods.")]


def paper_sources(method: str) -> dict[str, str]:
    """field -> source of `method`'s paper preset (from miad/methods/<method>/model.py PAPER_SOURCES)."""
    from miad.registry import get_method

    get_method(method)  # an unknown name fails listing the valid ones
    module = importlib.import_module(f"miad.methods.{method}.model")
    sources = getattr(module, "PAPER_SOURCES", None)
    if sources is None:
        raise ConfigError(f"{module.__file__} defines no PAPER_SOURCES; build its paper preset with cited_preset")
    return dict(sources)


def source_problems(method: str) -> list[str]:
    """Fields of the paper preset without a well-formed source, and sources of fields it does not have."""
    from miad.registry import get_method

    fields = get_method(method).PRESETS["paper"].to_dict()
    sources = paper_sources(method)
    problems = [f"{method}.{k}: no source" for k in fields if not sources.get(k, "").strip()]
    problems += [f"{method}.{k}: source for a field the config does not have" for k in sources if k not in fields]
    for key, text in sources.items():
        if key in fields and _CLAIM.match(text) is None:
            problems.append(f"{method}.{key}: {text!r} starts with neither an appendix section ('MIAD A.2.n: '), "
                            "a pinned file ('owner/repo @ ref path: ') nor 'miad: '")
        problems += [f"{method}.{key}: {pin!r} is not one of the pinned originals" for pin in _PIN.findall(text)
                     if pin not in PINS]
    return problems


def source_rows(method: str) -> list[tuple[str, str, str]]:
    """(field, value as JSON, source) for every field of the paper preset, in the config's field order."""
    from miad.registry import get_method

    sources = paper_sources(method)
    values = get_method(method).PRESETS["paper"].to_dict()
    return [(k, json.dumps(v), sources.get(k, "(no source)")) for k, v in values.items()]


def markdown_tables(methods: list[str]) -> str:
    """The README block: one collapsible table per method."""
    out = [f"Pinned originals: {', '.join(f'`{p}`' for p in PINS)}; anomalib's tag v0.3.7 is commit 2f0a87c.", ""]
    for method in methods:
        rows = source_rows(method)
        out += [f"<details><summary><code>{method}</code> ({len(rows)} fields)</summary>", "",
                "| field | `paper` value | source |", "|---|---|---|"]
        out += [f"| `{k}` | `{v}` | {s.replace('|', '/')} |" for k, v, s in rows]
        out += ["", "</details>", ""]
    return "\n".join(out).rstrip() + "\n"

# miad's own fields, the same in every paper preset.
HOLDOUT = ("miad: normal training images kept out of training for the threshold and the validation loss (a "
           "project rule; MIAD and the originals train on all of them)")
THRESHOLD = ("miad: decision threshold = this quantile of the held-out normal image scores (MIAD reports "
             "threshold-free metrics only)")
SEED = "miad: the run's seed (the benchmark sets it with --seeds; MIAD states none)"
ALL_IMAGES = "miad: every training image (MIAD samples a subset for PatchCore only, A.2.2)"
