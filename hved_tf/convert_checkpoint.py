"""Convert the authors' NiftyNet U-HVED / U-HeMIS checkpoint into Keras weights:
`hved-convert --model u_hved --checkpoint models/u_hved/models/model.ckpt-60000
--output u_hved.weights.h5`.

Writes `--output` (.weights.h5, or a whole .keras model) only when every variable of the model
was found in the checkpoint with the right shape (`hved_tf.convert`); the file is written under
a temporary name and renamed, so a failed or interrupted run leaves nothing half-written.
"""
from __future__ import annotations

from hved_tf import quiet  # noqa: F401  (first: TensorFlow starts without its banner)
import dataclasses
import pathlib

from hved_tf.cli import Program
from hved_tf.convert import RELEASED, load_niftynet_checkpoint
from hved_tf.io.atomic import atomic_path
from hved_tf.models import build_model
from hved_tf.settings import check_fields, setting

_GROUP = "conversion"


@dataclasses.dataclass(frozen=True)
class ConvertConfig:
    """`hved-convert`: which released model, its checkpoint, the file to write."""
    model: str = setting("", "The released model the checkpoint holds.",
                         choices=tuple(RELEASED), required=True, group=_GROUP)
    checkpoint: str = setting("", "The checkpoint prefix, e.g. .../model.ckpt-60000 (no "
                              ".index suffix).", required=True, group=_GROUP)
    output: str = setting("", "A .weights.h5 or .keras file to write.", required=True,
                          group=_GROUP)
    overwrite: bool = setting(False, "Replace --output if it exists.", group=_GROUP)

    def validate(self):
        check_fields(self)
        return self


def run(config):
    out = pathlib.Path(config.output)
    if not (out.name.endswith(".weights.h5") or out.suffix == ".keras"):
        raise ValueError(f"--output must end in .weights.h5 or .keras, got {out.name!r}.")
    if out.exists() and not config.overwrite:
        raise ValueError(f"--output {out} exists; pass --overwrite to replace it.")
    model = build_model(config.model)
    count = load_niftynet_checkpoint(model, config.checkpoint)
    with atomic_path(out) as tmp:
        (model.save if out.suffix == ".keras" else model.save_weights)(tmp)
    print(f"Loaded {count} variables of {config.model} from {config.checkpoint}; wrote {out}.")


PROGRAM = Program(ConvertConfig, run, name="convert_checkpoint", doc=__doc__)

if __name__ == "__main__":
    PROGRAM.main()
