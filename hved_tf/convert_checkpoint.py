"""Convert the authors' NiftyNet U-HVED / U-HeMIS checkpoint into Keras weights:
`hved-convert --model u_hved --checkpoint models/u_hved/models/model.ckpt-60000
--output u_hved.weights.h5`.

Writes `--output` (.weights.h5, or a whole .keras model) only when every variable of the model
was found in the checkpoint with the right shape (`hved_tf.convert`); the file is written under
a temporary name and renamed, so a failed or interrupted run leaves nothing half-written.
"""
from __future__ import annotations

from hved_tf import quiet  # noqa: F401  (first: TensorFlow starts without its banner)
import pathlib

from absl import flags

from hved_tf.cli import Program, flag_group
from hved_tf.convert import RELEASED, load_niftynet_checkpoint
from hved_tf.io.atomic import atomic_path
from hved_tf.models import build_model

FLAGS = flags.FLAGS


def define_flags():
    with flag_group("conversion"):
        flags.DEFINE_enum("model", None, list(RELEASED), "The released model the checkpoint "
                          "holds.")
        flags.DEFINE_string("checkpoint", None, "The checkpoint prefix, e.g. "
                            ".../model.ckpt-60000 (no .index suffix).")
        flags.DEFINE_string("output", None, "A .weights.h5 or .keras file to write.")
        flags.DEFINE_bool("overwrite", False, "Replace --output if it exists.")


def run():
    out = pathlib.Path(FLAGS.output)
    if not (out.name.endswith(".weights.h5") or out.suffix == ".keras"):
        raise ValueError(f"--output must end in .weights.h5 or .keras, got {out.name!r}.")
    if out.exists() and not FLAGS.overwrite:
        raise ValueError(f"--output {out} exists; pass --overwrite to replace it.")
    model = build_model(FLAGS.model)
    count = load_niftynet_checkpoint(model, FLAGS.checkpoint)
    with atomic_path(out) as tmp:
        (model.save if out.suffix == ".keras" else model.save_weights)(tmp)
    print(f"Loaded {count} variables of {FLAGS.model} from {FLAGS.checkpoint}; wrote {out}.")


PROGRAM = Program(define_flags, run, ("model", "checkpoint", "output"), name="convert_checkpoint",
                  doc=__doc__)

if __name__ == "__main__":
    PROGRAM.main()
