"""`miad train`: fit one method on one scenario (or on all of them together: `--scenario all`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from miad.commands._common import add_device, add_loader, add_seed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="fit a method and write model.pt", description=__doc__)
    p.add_argument("--method", required=True, help="method name (see `miad methods`)")
    p.add_argument("--data", required=True, help="data root, or 'builtin' for the built-in mini-MIAD")
    p.add_argument("--scenario", default="all",
                   help="category name, comma list, or 'all' (one model trained on all categories together)")
    p.add_argument("--preset", default="quick", help="paper | quick")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (JSON or string)")
    p.add_argument("--config", help="YAML file of config overrides")
    p.add_argument("--out", required=True, help="output folder (model.pt, config.yaml, history.json)")
    add_device(p)
    add_loader(p)
    add_seed(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from miad import distributed
    from miad.registry import create
    from miad.runconfig import load_samples, resolve_overrides, split, write_json_atomic, write_resolved_config

    device = distributed.init_from_env(args.device)  # torchrun: one process per GPU, rank 0 writes
    main = distributed.is_main()
    overrides = resolve_overrides(args.set, args.config, batch_size=args.batch_size, seed=args.seed)
    det = create(args.method, args.preset, **overrides)
    samples = load_samples(args.data, args.scenario)
    train = split(samples, "train")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if main:
        write_resolved_config(out, det, preset=args.preset, data=str(args.data), scenario=args.scenario,
                              world_size=distributed.world_size())
        cats = sorted({s.category for s in train})
        print(f"training {det.name} ({args.preset}) on {len(train)} normal images of {', '.join(cats)}")
    t0 = time.perf_counter()
    det.fit(train, device=device, state_dir=str(out / "state"), num_workers=args.num_workers, progress=main)
    seconds = time.perf_counter() - t0
    if not main:
        return 0
    det.save(str(out / "model.pt"))
    write_json_atomic(out / "history.json", {"fit_seconds": seconds, "epochs": det.history,
                                             "trained_on": det.trained_on})
    thr = f"{det.threshold:.6g}" if det.threshold is not None else "none (no held-out images)"
    print(f"fitted in {seconds:.1f} s; threshold from held-out normal images: {thr}")
    print(f"wrote {out / 'model.pt'}")
    return 0
