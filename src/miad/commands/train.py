"""`miad train`: fit one method on one scenario (or on all of them together: `--scenario all`)."""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

from miad.commands._common import add_device, add_loader, add_logger, add_seed, output_folder


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
    p.add_argument("--protocol", default="held-out", choices=("held-out", "paper-selection"),
                   help="held-out (default): never looks at test data; paper-selection: the peers' model selection "
                        "on the TEST set's pixel AUROC (miad.selection), outputs marked 'selected on test'")
    p.add_argument("--restart", action="store_true",
                   help="train from scratch even if --out holds a resume state or a model of another run")
    p.add_argument("--no-image-cache", dest="image_cache", action="store_false",
                   help="decode the images every epoch instead of once into the decoded-image cache")
    add_logger(p)
    add_device(p)
    add_loader(p)
    add_seed(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from miad import distributed
    from miad.config import resolve_overrides
    from miad.data.index import load_samples, resolve_data_root, split_samples
    from miad.folder_lock import FolderLock
    from miad.registry import get_method, make_config
    from miad.tracking import resolve_loggers
    from miad.train_out import training_identity

    args.loggers = resolve_loggers(args.logger)  # a missing tracker package fails before anything else
    device = distributed.init_from_env(args.device)  # torchrun: one process per GPU, rank 0 writes
    main = distributed.is_main()
    overrides = resolve_overrides(args.set, args.config, batch_size=args.batch_size, seed=args.seed)
    config = make_config(args.method, args.preset, **overrides)
    root = resolve_data_root(args.data)
    samples = load_samples(str(root), args.scenario)
    train = split_samples(samples, "train")
    out = output_folder(args.out)
    selection = _selection(args, split_samples(samples, "test"), out, main)
    wanted = training_identity(args.method, config, train, root, protocol=args.protocol if selection else None)
    with contextlib.ExitStack() as stack:
        if main:  # rank 0 alone holds the lock and decides; the other ranks follow its decision
            stack.enter_context(FolderLock(out))
        plan = _decide(out, wanted, args.restart, main)
        if plan.finished:
            if main:
                print(f"already trained: {out / 'model.pt'}; pass --restart to train again")
            return 0
        det = get_method(args.method)(config)  # built only now: loading pretrained weights takes a while
        return _fit_and_write(args, det, train, out, wanted, plan, device, main, selection)


def _selection(args, test, out: Path, main: bool):
    """The test-set selection --protocol paper-selection asks for, or None (held-out, or a method without one)."""
    from miad.selection import SelectionOnTest, no_rule_note, rule_for
    from miad.train_out import STATE_DIR

    rule = rule_for(args.method, args.protocol)
    if args.protocol != "held-out" and rule is None:
        if main:
            print(no_rule_note(args.method))
        return None
    return SelectionOnTest(rule, test, out / STATE_DIR) if rule else None


def _decide(out: Path, wanted: dict, restart: bool, main: bool):
    """Rank 0's plan for --out (resume, start, or keep the finished model), shared with every rank."""
    from miad import distributed
    from miad.errors import MiadError
    from miad.train_out import Plan, plan_training

    decision: Plan | str
    try:
        decision = plan_training(out, wanted, restart) if main else Plan(False)
    except MiadError as exc:
        decision = str(exc)
    decision = distributed.broadcast_from_main(decision)
    if isinstance(decision, str):
        from miad.train_out import RunFolderError

        raise RunFolderError(decision)
    return decision


def _fit_and_write(args, det, train, out: Path, wanted: dict, plan, device: str, main: bool, selection=None) -> int:
    from miad import distributed
    from miad.atomic import write_json_atomic
    from miad.config import write_resolved_config
    from miad.train_out import STATE_DIR, finish

    if main:
        cats = ", ".join(wanted["scenarios"])
        from miad.selection import MARK

        print(f"training {det.name} ({args.preset}) on {len(train)} normal images of {cats}"
              + (f"; model {MARK} (--protocol paper-selection)" if selection else ""))
        if plan.resume_after:
            print(f"resuming from {out / STATE_DIR}: {plan.resume_after} of {det.config.epochs} epochs done")
    with _open_tracker(args, det, out, wanted, main) as tracker:
        t0 = time.perf_counter()
        det.fit(train, device=device, state_dir=str(out / STATE_DIR), num_workers=args.num_workers, progress=main,
                image_cache=args.image_cache, selection=selection,
                callback=lambda row: tracker.log_epoch(int(row["epoch"]), row))  # rank 0's tracker logs
        seconds = time.perf_counter() - t0
        if not main:
            return 0
        _log_end(tracker, det, train, seconds)
        # model.pt last: it marks the run finished (with its identity), then the resume state goes
        chosen = {"selection": selection.summary(det.config.epochs)} if selection else {}
        write_json_atomic(out / "history.json", {"fit_seconds": seconds, "epochs": det.history,
                                                 "trained_on": det.trained_on, **chosen})
        write_resolved_config(out, det, preset=args.preset, data=str(args.data), scenario=args.scenario,
                              world_size=distributed.world_size(), **chosen)
        det.save(out / "model.pt", identity=wanted)
    finish(out)  # after the tracker closed: its MLflow run id stays in the state until the run is logged
    thr = f"{det.threshold:.6g}" if det.threshold is not None else "none (no held-out images)"
    print(f"fitted in {seconds:.1f} s; threshold from held-out normal images: {thr}")
    if selection is not None:
        stop = f", stopped early at epoch {selection.stopped_at}" if selection.stopped else ""
        print(f"selected on test: kept epoch {selection.best_epoch} of {det.config.epochs} (test pixel AUROC "
              f"{selection.best_metric:.4f}{stop})")
    print(f"wrote {out / 'model.pt'}")
    return 0


def _open_tracker(args, det, out: Path, wanted: dict, main: bool):
    """Rank 0's tracker for this run, already holding the epochs of a resumed run; other ranks log nothing."""
    from miad.tracking import RunInfo, Tracker, open_tracker
    from miad.tracking.content import run_params
    from miad.train import finished_epochs
    from miad.train_out import STATE_DIR

    if not main:
        return Tracker([])
    scenarios = ",".join(wanted["scenarios"])
    run = RunInfo(folder=out, state_dir=out / STATE_DIR, store=out, experiment="miad train",
                  run_name=f"{det.name} {scenarios}", done=finished_epochs(out / STATE_DIR),
                  tags={"method": det.name, "scenario": scenarios, "preset": args.preset, "out": str(out.resolve())})
    tracker = open_tracker(args.loggers, run)
    tracker.log_params(run_params(det, preset=args.preset, data=str(args.data), scenario=args.scenario))
    return tracker


def _log_end(tracker, det, train, seconds: float) -> None:
    """Fit statistics and a few held-out heat maps, at the last epoch's step."""
    from miad.tracking.content import final_step, fit_statistics, heldout_heatmaps

    step = final_step(det)
    tracker.log_metrics({"fit/seconds": seconds, "fit/threshold": det.threshold, **fit_statistics(det)}, step)
    if tracker.wants_images:
        tracker.log_images(heldout_heatmaps(det, train), step)
