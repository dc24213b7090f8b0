"""Acceptance: every command README.md shows, run as written from the built wheel in a fresh virtualenv.

    python scripts/readme_acceptance.py [--work DIR] [--only TEXT] [--keep]

1. `pip wheel --no-deps` builds the wheel of this checkout; `python -m venv` makes a new virtualenv outside the
   repository (no system site packages, nothing of the repository on sys.path), and `pip install
   'WHEEL[export,tensorboard,mlflow,cluster]'` installs it with the README's extras, each dependency resolved by
   pip from the configured index exactly as a user's install (torch included).
2. The commands are read from README.md itself, so the list cannot drift: every line of each ```bash block
   (continuations joined), each ```python block (run by the venv's python), and the complete commands written
   inline in the prose (INLINE below; the script fails when one of them is no longer in the README). Each runs in
   WORK/cwd with the venv's bin first on PATH and a fresh MIAD_CACHE, in README order.
3. What cannot run here is skipped with its reason (SKIPS: SLURM, several GPUs, the DTD archive, installs by
   package name). Placeholder paths of the README (`/data/miad`, `new_photos/`, ...) are replaced by stand-ins made
   here (STANDINS). Long commands are shortened only by their own flags appended at the end (argparse keeps the
   last value): one epoch, one scenario, one seed, random backbone weights for `paper` presets (offline: the
   ImageNet files are not downloadable). Servers (`tensorboard`, `mlflow ui`) pass when still serving after 20 s.

Exit status 0 when every command that is not skipped exits 0. Not part of `make test` (minutes, and it installs a
virtualenv); the log of each command is kept in WORK/logs.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXTRAS = "export,tensorboard,mlflow,cluster"
ALL_METHODS = ("draem", "fastflow", "patchcore", "reverse_distillation", "unet_ae", "uniad")
GRADIENT = {"draem", "fastflow", "reverse_distillation", "unet_ae", "uniad"}  # trained for epochs (PatchCore: not)
IMAGENET_PAPER = {"fastflow", "patchcore", "reverse_distillation", "uniad"}  # paper presets load ImageNet weights
# DRAEM's paper network at 256 px took 389 s for one epoch of 11 images on this busy 2-core CPU; at the quick
# preset's 64 px (same network) it is ~16x less work
SMALL_DRAEM = 64
SERVERS = ("tensorboard", "mlflow ui")
SERVER_SECONDS = 20

# Commands written inline in the prose that are complete (the other inline spans are names or fragments).
INLINE = ("miad --version", "miad methods --show NAME", "miad data check <root> --format miad",
          "miad data check <root>", "miad benchmark --report-only --out OUT", "miad COMMAND --help",
          "pip install .", "pip install '.[export,tensorboard,mlflow,cluster]'", "pip install 'miad[export]'",
          "PYTHONPATH=src python -m miad.argtable")
INLINE_VALUES = {"NAME": "patchcore", "<root>": "/data/miad", "OUT": "runs/bench"}  # then STANDINS apply

SKIPS = (  # (command prefix, why it cannot run here)
    ("make ", "the repository's Makefile (a checkout, not the wheel): `make demo` runs the tour's last command"),
    ("pip install", "an install by name or from a checkout; this script installs the wheel with every extra"),
    ("PYTHONPATH=src python -m miad.argtable", "a maintainer's command in a checkout "
     "(tests/test_argtable.py runs it)"),
    ("torchrun", "DistributedDataParallel over several GPUs (none here)"),
    ("tar xzf dtd", "needs the DTD archive, downloaded by hand; a stand-in texture folder replaces its images"),
    ("#!", "a SLURM batch script (sbatch); its miad line is the Benchmarking section's command"),
)
SKIP_FLAGS = (("--executor slurm", "needs SLURM's sbatch and submitit's cluster"),)

# The README's `...` in `miad benchmark ... --jobs 4 --out runs/paper` stands for the same command's arguments
# ("several workers of the same command"): those of the Benchmarking section's paper grid on the same --out.
ELLIPSIS = "--data /data/miad --methods all --scenarios all --preset paper --seeds 0,1,2"


@dataclass
class Command:
    section: str
    text: str  # as the README writes it
    kind: str = "shell"  # shell | python | skip
    reason: str = ""
    argv: list[str] = field(default_factory=list)


def _blocks(text: str):
    """(section, language, body) of each fenced block, outside the generated command reference."""
    section, lang, body = "", None, []
    for line in text.splitlines():
        if lang is None and line.startswith("#"):
            section = line.lstrip("#").strip()
        if line.startswith("```"):
            if lang is None:
                lang, body = line[3:].strip(), []
            else:
                yield section, lang, body
                lang = None
        elif lang is not None:
            body.append(line)


def readme_commands(text: str) -> list[Command]:
    commands = []
    for section, lang, body in _blocks(text):
        if lang == "python":
            commands.append(Command(section, "\n".join(body), "python"))
        elif lang == "bash" and body and body[0].startswith("#!"):
            commands.append(Command(section, "\n".join(body), "skip", dict(SKIPS)["#!"]))
        elif lang == "bash":
            joined = "\n".join(body).replace("\\\n", " ")
            commands += [Command(section, line.strip()) for line in joined.splitlines() if line.strip()]
    for inline in INLINE:
        if f"`{inline}`" not in text:
            raise SystemExit(f"error: README.md no longer shows `{inline}`; update INLINE in {__file__}")
        commands.append(Command("inline", inline))
    return commands


def _option(argv: list[str], flag: str, default: str | None = None) -> str | None:
    values = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]
    return values[-1] if values else default


def shorten(argv: list[str]) -> list[str]:
    """Flags appended to make a long command short: one epoch, one scenario and seed, random paper weights."""
    if argv[:2] == ["miad", "train"]:
        method, preset = _option(argv, "--method"), _option(argv, "--preset", "quick")
        extra = ["--set", "epochs=1"] if method in GRADIENT else []
        if preset == "paper" and _option(argv, "--data") == "builtin" and method in GRADIENT:
            extra += ["--scenario", "wind_turbine"]  # the built-in data has 100 training images per scenario
        extra += ["--set", f"image_size={SMALL_DRAEM}"] if preset == "paper" and method == "draem" else []
        return extra + (["--set", "weights=random"] if preset == "paper" and method in IMAGENET_PAPER else [])
    if argv[:2] != ["miad", "benchmark"] or "--report-only" in argv:
        return []
    methods = _option(argv, "--methods", "all")
    names = ALL_METHODS if methods == "all" else methods.split(",")
    extra = []
    if _option(argv, "--scenarios", "all") == "all":
        extra += ["--scenarios", "wind_turbine,witness_mark" if "--unified" in argv else "wind_turbine"]
    seeds = _option(argv, "--seeds")
    if seeds and "," in seeds:
        extra += ["--seeds", seeds.split(",")[0]]
    preset = _option(argv, "--preset", "quick")
    for name in names:
        extra += ["--set", f"{name}.epochs=1"] if name in GRADIENT else []
        extra += ["--set", f"{name}.weights=random"] if preset == "paper" and name in IMAGENET_PAPER else []
        extra += ["--set", f"draem.image_size={SMALL_DRAEM}"] if preset == "paper" and name == "draem" else []
    return extra


def plan(cmd: Command, standins: dict[str, str]) -> Command:
    """Classify and resolve one command: skipped with a reason, or its argv (stand-ins, then shortening)."""
    if cmd.kind != "shell":
        return cmd
    for prefix, reason in SKIPS:
        if cmd.text.startswith(prefix):
            return Command(cmd.section, cmd.text, "skip", reason)
    for flag, reason in SKIP_FLAGS:
        if flag in cmd.text:
            return Command(cmd.section, cmd.text, "skip", reason)
    argv = shlex.split(cmd.text, comments=True)
    if cmd.section == "inline":
        if "COMMAND" in argv:
            return cmd  # expanded to every sub-command by the caller
        argv = [INLINE_VALUES.get(a, a) for a in argv]
    if "..." in argv:
        i = argv.index("...")
        argv[i:i + 1] = shlex.split(ELLIPSIS)
    argv = [_standin(a, standins) for a in argv]
    return Command(cmd.section, cmd.text, "shell", "", argv + shorten(argv))


def _standin(arg: str, standins: dict[str, str]) -> str:
    for placeholder, path in standins.items():
        if arg == placeholder or arg.startswith(placeholder.rstrip("/") + "/") or arg.endswith("=" + placeholder):
            return arg.replace(placeholder.rstrip("/"), path.rstrip("/"), 1)
    return arg


def run(argv: list[str], cwd: Path, env: dict[str, str], log: Path, server: bool = False) -> tuple[bool, float]:
    """(passed, seconds); output to `log`. A server passes when it still runs after SERVER_SECONDS."""
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        fh.write("$ " + shlex.join(argv) + "\n")
        fh.flush()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=SERVER_SECONDS if server else 3600)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            return server, time.perf_counter() - t0
    return rc == 0, time.perf_counter() - t0


def build_venv(work: Path) -> Path:
    """The wheel of this checkout, installed with its extras into WORK/venv; returns the venv's bin folder."""
    dist, log = work / "dist", work / "logs/install.log"
    with open(log, "w") as fh:
        def step(argv: list[str]) -> None:
            fh.write("$ " + shlex.join(argv) + "\n")
            fh.flush()
            if subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT).returncode:
                raise SystemExit(f"error: {shlex.join(argv)} failed; see {log}")

        step([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(REPO)])
        (wheel,) = dist.glob("miad-*.whl")
        step([sys.executable, "-m", "venv", str(work / "venv")])
        step([str(work / "venv/bin/python"), "-m", "pip", "install", "--upgrade", "pip"])
        step([str(work / "venv/bin/python"), "-m", "pip", "install", f"{wheel}[{EXTRAS}]"])
    return work / "venv/bin"


def make_standins(work: Path, cwd: Path, env: dict[str, str]) -> dict[str, str]:
    """Small real stand-ins for what the README expects the user to have: a MIAD-layout tree (7 scenarios), new
    photos (png and jpg) and a DTD-like texture folder; made with the installed miad and its dependencies."""
    root = work / "standins"
    subprocess.run(["miad", "synth", str(root / "miad"), "--n-train", "12", "--n-test-good", "4",
                    "--n-test-defect", "4", "--seed", "7"], env=env, check=True, stdout=subprocess.DEVNULL)
    script = f"""
import numpy as np
from pathlib import Path
from PIL import Image
test = sorted(Path({str(root / 'miad/wind_turbine/test')!r}).rglob('*.png'))[:4]
for folder in ('new_photos', 'more'):
    Path({str(cwd)!r}, folder).mkdir(parents=True, exist_ok=True)
for i, p in enumerate(test[:2]):
    Image.open(p).save(Path({str(cwd)!r}, 'new_photos', p.parent.name + p.name))
for i, p in enumerate(test[2:]):
    Image.open(p).convert('RGB').save(Path({str(cwd)!r}, 'more', f'{{i}}.jpg'))
rng = np.random.default_rng(0)
for texture in ('banded', 'dotted'):
    out = Path({str(root / 'dtd/images')!r}, texture)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(out / f'{{texture}}_{{i}}.jpg')
"""
    subprocess.run(["python", "-c", script], env=env, check=True)
    return {"/data/miad": str(root / "miad"), "/data/dtd/images": str(root / "dtd/images")}


def subcommands(text: str) -> list[str]:
    """The sub-commands the generated command reference lists (`### `miad data check`` -> ["data", "check"])."""
    return [m.split() for m in re.findall(r"^### `miad ([a-z ]+)`$", text, re.M)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, help="work folder (default: a new one under the temp dir)")
    ap.add_argument("--only", help="run only the commands containing this text (the set-up always runs)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (the default removes it on success)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="miad-readme-"))
    if REPO in work.resolve().parents:
        raise SystemExit(f"error: --work {work} lies inside the repository; pass a folder outside it")
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands = readme_commands(text)  # fails early when an INLINE command left the README
    t0 = time.perf_counter()
    cwd, logs = work / "cwd", work / "logs"
    for folder in (cwd, logs):
        folder.mkdir(parents=True, exist_ok=True)
    bin_dir = build_venv(work)
    print(f"wheel built and installed into {work / 'venv'} in {time.perf_counter() - t0:.0f} s", flush=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "MLFLOW_TRACKING_URI")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", MIAD_CACHE=str(work / "cache"))
    standins = make_standins(work, cwd, env)
    results = []
    for i, cmd in enumerate(commands):
        todo = plan(cmd, standins)
        if args.only and args.only not in cmd.text:
            continue
        if todo.kind == "skip":
            results.append(("skip", 0.0, cmd.text, todo.reason))
            continue
        runs = [todo.argv] if todo.kind == "shell" and todo.argv else []
        if todo.kind == "python":
            runs = [["python", "-c", todo.text]]
        elif not todo.argv:  # `miad COMMAND --help`: every sub-command
            runs = [["miad", *words, "--help"] for words in subcommands(text)]
        for argv in runs:
            server = any(cmd.text.startswith(s) for s in SERVERS)
            ok, seconds = run(argv, cwd, env, logs / f"{i:02d}.log", server)
            shown = shlex.join(argv) if cmd.text == "miad COMMAND --help" else cmd.text
            results.append(("ok" if ok else "FAIL", seconds, shown, shlex.join(argv)))
            print(f"{'ok' if ok else 'FAIL':4s} {seconds:7.1f} s  {shown.splitlines()[0]}", flush=True)
            if not ok:
                print(f"      log: {logs / f'{i:02d}.log'}\n      ran: {shlex.join(argv)}", flush=True)
    return _summary(results, work, args.keep, time.perf_counter() - t0)


def _summary(results: list[tuple], work: Path, keep: bool, seconds: float) -> int:
    failed = [r for r in results if r[0] == "FAIL"]
    skipped = sum(r[0] == "skip" for r in results)
    print(f"\n{len(results) - skipped} commands ran in {seconds / 60:.1f} min (install included): "
          f"{len(results) - skipped - len(failed)} passed, {len(failed)} failed; {skipped} skipped:")
    for _, _, text, reason in (r for r in results if r[0] == "skip"):
        print(f"  skip  {text.splitlines()[0][:90]}\n        ({reason})")
    for _, _, text, _ in failed:
        print(f"  FAIL  {text.splitlines()[0][:90]}")
    if failed or keep:
        print(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
