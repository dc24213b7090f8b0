"""`miad synth OUT`: generate the procedural mini-MIAD (7 scenarios, 14 defect types, masks, manifest.csv).

--viewpoint / --background / --surface set that factor's strength for every scenario (0 = controlled);
without them each scenario keeps its default strengths (appendix A.3 of the MIAD paper).
"""

from __future__ import annotations

import argparse
import time

from miad.commands._common import csv_list


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("synth", help="generate the procedural mini-MIAD data set")
    p.add_argument("out", metavar="OUT", help="output folder (new, empty, or an earlier synth output)")
    p.add_argument(
        "--scenarios", type=csv_list, default=None, metavar="A,B", help="comma-separated scenarios (default: all 7)"
    )
    p.add_argument("--n-train", type=int, default=100, metavar="N", help="normal training images per scenario")
    p.add_argument("--n-test-good", type=int, default=25, metavar="N", help="normal test images per scenario")
    p.add_argument(
        "--n-test-defect",
        type=int,
        default=25,
        metavar="N",
        help="defective test images per scenario, spread evenly over its defect types",
    )
    p.add_argument("--size", type=int, default=256, metavar="PX", help="image side in pixels")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (same seed, same bytes)")
    for factor in ("viewpoint", "background", "surface"):
        p.add_argument(
            f"--{factor}",
            type=float,
            default=None,
            metavar="F",
            help=f"{factor} strength in [0, 1] for all scenarios (default: per-scenario)",
        )
    p.add_argument(
        "--workers", type=int, default=None, metavar="N", help="worker processes (default: the usable cores, at most 8)"
    )
    p.add_argument("--sheet", metavar="FILE", default=None, help="also write a contact sheet PNG here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from miad.data.synth import generate, resolve_strengths, write_sheet
    from miad.data.synth.spec import check_scenarios

    scenarios = check_scenarios(args.scenarios)
    strengths = resolve_strengths(
        scenarios, None, viewpoint=args.viewpoint, background=args.background, surface=args.surface
    )
    start = time.perf_counter()
    out = generate(
        args.out,
        scenarios=scenarios,
        n_train=args.n_train,
        n_test_good=args.n_test_good,
        n_test_defect=args.n_test_defect,
        size=args.size,
        seed=args.seed,
        strengths=strengths,
        workers=args.workers,
    )
    count = len(scenarios) * (args.n_train + args.n_test_good + args.n_test_defect)
    print(f"wrote {count} images of {len(scenarios)} scenario(s) to {out} in {time.perf_counter() - start:.1f} s")
    if args.sheet:
        print(f"contact sheet: {write_sheet(out, args.sheet, scenarios)}")
    return 0
