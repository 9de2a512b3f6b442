"""Does the float16 cache change what the demo learns? The demo recipe (configs/demo.cfg) trained
with `--cache_dtype=float16` and `--cache_dtype=float32` for several seeds (a seed draws other
phantoms, another split, other windows and initial weights), and the held-out Dice of both
compared with the seed-to-seed spread. Not a test: run it by hand (about 7.5 min per run alone
on 2 CPU cores, so 45 min for the default 3 seeds; 70 min measured beside other work).

    python -m tools.benchmarks.cache_dtype [--work_dir DIR] [--seeds 0,1,2] [--steps N]

Prints, per seed, the all-four-sequence WT / TC / ET Dice and the enhancing-tumour gap with and
without T1c (the figures the main job prints) of both dtypes, then their means, the standard
deviation over seeds, and the mean and spread of the paired difference (float16 - float32).
"Within noise": the paired differences' mean is smaller than the seed-to-seed standard
deviation. Runs are kept in the work folder: a second call reuses finished ones.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import tempfile

from tools.benchmarks.robustness import REGIONS, REPO, _run

DTYPES = ("float16", "float32")
ALL_FOUR = "T1+T1c+T2+FLAIR"


def _figures(run):
    """(WT, TC, ET with all four, ET gap with/without T1c) of a finished run."""
    results = json.loads((run / "test_results.json").read_text())
    full = results["test"][ALL_FOUR]
    gap = (results.get("enhancing_by_t1c") or {}).get("gap", float("nan"))
    return tuple(full[r] for r in REGIONS) + (gap,)


def _sd(values):
    return statistics.stdev(values) if len(values) > 1 else float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work_dir", default="")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=0, help="0: the demo's")
    args = parser.parse_args(argv)
    work = pathlib.Path(args.work_dir or tempfile.mkdtemp(prefix="hved_bench_dtype_"))
    work.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    figures = {}
    for seed in seeds:
        for dtype in DTYPES:
            run = work / f"run_{dtype}_seed{seed}"
            print(f"training seed {seed}, {dtype} cache -> {run}", flush=True)
            _run(["hved_tf.train", "--flagfile", str(REPO / "configs" / "demo.cfg"),
                  f"--run_dir={run}", f"--seed={seed}", f"--cache_dtype={dtype}",
                  *([f"--steps={args.steps}"] if args.steps else [])])
            figures[dtype, seed] = _figures(run)
    names = ("WT", "TC", "ET", "ET gap")
    print(f"\nHeld-out Dice with all four sequences (demo recipe, {args.steps or 'its'} steps), "
          "and the ET gap (over the subsets with T1c minus without):")
    print("| seed | " + " | ".join(f"{n} f16 / f32" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for seed in seeds:
        cells = [f"{figures['float16', seed][k]:.3f} / {figures['float32', seed][k]:.3f}"
                 for k in range(len(names))]
        print(f"| {seed} | " + " | ".join(cells) + " |")
    print("\n| figure | float16 mean ± sd | float32 mean ± sd | f16 - f32: mean ± sd | "
          "within noise |")
    print("|---|---|---|---|---|")
    for k, name in enumerate(names):
        a = [figures["float16", s][k] for s in seeds]
        b = [figures["float32", s][k] for s in seeds]
        diff = [x - y for x, y in zip(a, b)]
        spread = max(_sd(a), _sd(b))
        within = abs(statistics.mean(diff)) < spread
        print(f"| {name} | {statistics.mean(a):.3f} ± {_sd(a):.3f} | "
              f"{statistics.mean(b):.3f} ± {_sd(b):.3f} | "
              f"{statistics.mean(diff):+.3f} ± {_sd(diff):.3f} | {'yes' if within else 'NO'} |")


if __name__ == "__main__":
    sys.exit(main())
