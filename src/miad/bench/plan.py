"""What a benchmark will run: the method x setting x seed grid, and each method's resolved config.

A setting is one category (a model per category, as the paper does) or "unified" (one model per method trained
on every selected category). Overrides apply to every method, except keys written `method.key`
(`--set fastflow.epochs=20`), which apply to that method only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from miad.errors import ConfigError
from miad.registry import get_method, list_methods, make_config

UNIFIED = "unified"


@dataclass(frozen=True)
class RunSpec:
    method: str
    setting: str  # a category name, or UNIFIED
    seed: int
    categories: tuple[str, ...]  # what the model is trained on and evaluated on
    config: Any  # the method's resolved config (frozen dataclass), seed included
    protocol: str = "held-out"  # or "paper-selection": selected on the test set (miad.selection)

    @property
    def rel_dir(self) -> str:
        suffix = "" if self.protocol == "held-out" else f"-{self.protocol}"  # its own folder: resumes separately
        return f"runs/{self.method}/{self.setting}/seed{self.seed}{suffix}"

    @property
    def unified(self) -> bool:
        return self.setting == UNIFIED


def resolve_methods(methods: str | Sequence[str]) -> list[str]:
    if isinstance(methods, str):
        methods = list_methods() if methods == "all" else [m.strip() for m in methods.split(",") if m.strip()]
    names = list(dict.fromkeys(methods))
    if not names:
        raise ConfigError(f"no method selected; pass --methods all or some of: {', '.join(list_methods())}")
    for name in names:
        get_method(name)  # unknown names fail listing the valid ones
    return names


def method_overrides(overrides: dict[str, Any], method: str) -> dict[str, Any]:
    """The overrides for `method`: plain keys, then `method.key` ones (which win)."""
    plain = {k: v for k, v in overrides.items() if "." not in k}
    for key, value in overrides.items():
        if "." not in key:
            continue
        prefix, _, name = key.partition(".")
        if prefix not in list_methods():
            raise ConfigError(
                f"override {key!r}: {prefix!r} is not a method; write method.key with one of "
                f"{', '.join(list_methods())}, or a plain key for every method"
            )
        if prefix == method:
            plain[name] = value
    return plain


def method_config(method: str, preset: str, overrides: dict[str, Any], seed: int | None) -> Any:
    own = method_overrides(overrides, method)
    if seed is not None:
        own["seed"] = seed
    try:
        return make_config(method, preset, **own)
    except ConfigError as exc:
        if "unknown config key" not in str(exc):
            raise
        raise ConfigError(f"{exc} (to set a key for one method only, write --set {method}.KEY=VALUE)") from None


def plan_runs(
    methods: list[str], categories: list[str], preset: str, seeds: Sequence[int] | None, unified: bool,
    overrides: dict[str, Any], protocols: Sequence[str] = ("held-out",),
) -> list[RunSpec]:
    """Every run, method by method (so one method's cost estimate serves its later runs), configs validated.
    A protocol that changes nothing for a method (miad.selection.NO_RULE) adds no run for it."""
    from miad.selection import rule_for

    settings = [(UNIFIED, tuple(categories))] if unified else [(c, (c,)) for c in categories]
    specs = []
    for method in methods:
        kept = [p for p in protocols if p == "held-out" or rule_for(method, p) is not None]
        for seed in seeds if seeds else [None]:
            config = method_config(method, preset, overrides, seed)
            specs += [RunSpec(method, name, config.seed, cats, config, p) for p in kept for name, cats in settings]
    return specs
