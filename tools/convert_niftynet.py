"""Convert an original NiftyNet U-HVED / U-HeMIS checkpoint into Keras weights.

    python tools/convert_niftynet.py --model u_hved \\
        --checkpoint models/u_hved/models/model.ckpt-60000 --output u_hved.weights.h5

Writes `--output` (.weights.h5 or a full .keras model) only when every variable of the model was
found in the checkpoint with the right shape; the file is written under a temporary name and
renamed, so a failed or interrupted run leaves nothing half-written.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hved_tf.convert import RELEASED, load_niftynet_checkpoint  # noqa: E402
from hved_tf.io.atomic import atomic_path  # noqa: E402
from hved_tf.models import build_model  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=RELEASED, required=True)
    parser.add_argument("--checkpoint", required=True,
                        help="checkpoint prefix, e.g. .../model.ckpt-60000 (no .index suffix)")
    parser.add_argument("--output", required=True, help="a .weights.h5 or .keras file")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)

    out = pathlib.Path(args.output)
    if not (out.name.endswith(".weights.h5") or out.suffix == ".keras"):
        parser.error(f"--output must end in .weights.h5 or .keras, got {out.name!r}")
    if out.exists() and not args.overwrite:
        parser.error(f"{out} exists; pass --overwrite to replace it")

    model = build_model(args.model)
    try:
        count = load_niftynet_checkpoint(model, args.checkpoint)
    except ValueError as err:
        print(err, file=sys.stderr)
        return 1
    with atomic_path(out) as tmp:
        (model.save if out.suffix == ".keras" else model.save_weights)(tmp)
    print(f"Loaded {count} variables of {args.model} from {args.checkpoint}; wrote {out}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
