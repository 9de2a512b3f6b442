"""Build the preprocessed-subject cache ahead of training:
`python -m hved_tf.prepare --flagfile configs/brats18.cfg --prepare_workers 2`.

The same flags as `hved_tf.train` (give it the same flagfile): the subjects are discovered and
split, the landmarks trained (into the run folder's hist.txt) unless `--hist_file`, and every
subject prepared into the cache (`--cache_dir`, in `--cache_dtype`) by `--prepare_workers`
processes, with progress (subjects done, rate, time left). Training then finds every subject
prepared; without this step it prepares them itself, the same way. Entries are written whole:
an interrupted preparation leaves no partial entry, and running it again goes on where it
stopped. Nothing is trained; the model flags only have to agree with a run folder that exists.
"""
from __future__ import annotations

from hved_tf import quiet  # noqa: F401  (first: TensorFlow starts without its banner)
import pathlib
import time

from hved_tf.cli import Program
from hved_tf.config import TrainConfig
from hved_tf.training import app as training


def run(config):
    run_dir = pathlib.Path(config.run_dir)
    training.check_run_dir(run_dir, config)
    start = time.time()
    data = training.prepare(config, run_dir, True, start)
    n = sum(len(data[part]) for part in ("train", "validation", "test"))
    print(f"cache ready: {n} subjects in {config.data.cache_dir or run_dir.resolve().parent / 'cache'}"
          f" ({config.data.cache_dtype}, {time.time() - start:.0f} s with "
          f"{config.data.prepare_workers} worker(s)); train with the same flags.", flush=True)


PROGRAM = Program(TrainConfig, run, name="prepare", doc=__doc__,
                  no_arguments="no recipe given: name the one you will train with, e.g. "
                  "--flagfile configs/brats18.cfg --data_root=YOUR_BRATS_FOLDER.")

if __name__ == "__main__":
    PROGRAM.main()
