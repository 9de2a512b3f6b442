"""Writes a BraTS-like phantom dataset.

    python -m tools.dev.make_phantoms --out DIR --n N --shape X,Y,Z --seed S [--layout brats2020]

Deterministic for a seed; every third subject is stored in LPS orientation. See
hved_tf/data/synthetic.py for what the phantoms hold.
"""
from __future__ import annotations

import argparse
import sys
import time

from hved_tf.data.synthetic import LAYOUT_NAMES, write_phantom_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--shape", default="96,96,80", help="X,Y,Z (32 to 240,240,155)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layout", default="brats2020", choices=LAYOUT_NAMES)
    args = parser.parse_args(argv)
    try:
        shape = tuple(int(s) for s in args.shape.split(","))
        assert len(shape) == 3
    except (ValueError, AssertionError):
        parser.error(f"--shape must be three integers X,Y,Z, got {args.shape!r}")
    start = time.time()

    def progress(i, n, sid):
        print(f"[{i}/{n}] {sid}  ({time.time() - start:.0f} s)", flush=True)

    try:
        write_phantom_dataset(args.out, args.n, shape, args.seed, args.layout, progress=progress)
    except ValueError as err:
        parser.error(str(err))
    print(f"wrote {args.n} subjects ({args.layout} layout) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
