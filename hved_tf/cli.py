"""What the command-line programs share.

`Program(define_flags, run, required, exit_codes)` is one command line: `.main()` defines its
flags (only when run as a program, so that tests can import the modules), marks the required
ones and runs `run` under absl: a positional argument is refused, and a ValueError (bad input,
said in the user's terms) becomes `error: ...` on stderr and exit status 2. `.call(argv)` runs
the same program inside the calling process and returns its exit status (the fault-matrix tests
run dozens of bad inputs this way without starting TensorFlow each time).

`--help` (or `-h`) prints the program's own flags grouped by topic (`flag_group(title)` around
their definitions), with defaults and one line each, and exits 0; `--helpfull` still lists every
flag, absl's included. The program's own log lines go to stdout (`warning: ...` lines to
stderr), without absl's prefixes.

`define_inference_flags()` / `inference_options()`: the sliding-window flags of predict,
evaluate and export, turned into one validated `InferenceOptions` (one set of bounds for all).
"""
from __future__ import annotations

import dataclasses
import logging
import signal
import sys
from typing import Callable

from absl import app, flags
from absl import logging as absl_logging

from hved_tf import quiet
from hved_tf.config import BLENDS, PROTOCOLS, WEIGHTS, GridOptions, InferenceOptions
from hved_tf.config.vocabulary import INFERENCE_PRECISIONS
from hved_tf.config import parse_window as cfg_parse_window
from hved_tf.protocols import protocol_options, protocol_weights
from hved_tf.errors import Interrupted
from hved_tf.modalities import MODALITIES
from hved_tf.flaggroups import GROUPS, flag_group, help_text

FLAGS = flags.FLAGS


INTERRUPTED = 130         # the shell's code for a command ended by Ctrl-C


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def absl_main(run, exit_codes=()):
    """The `main` of absl.app.run: `run()` with errors said in one line. ValueError (bad input,
    unwritable output) exits 2, the exception types of `exit_codes` ((type, code) pairs) their
    code, Ctrl-C and SIGTERM 130, each printed as `error: ...` (or `interrupted: ...`) on
    stderr, never as a traceback."""
    def main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            run()
        except tuple(kind for kind, _ in exit_codes) as err:
            print(f"error: {err}", file=sys.stderr)
            return next(code for kind, code in exit_codes if isinstance(err, kind))
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except Interrupted as err:
            print(f"interrupted: {err}", file=sys.stderr)
            return INTERRUPTED
        except KeyboardInterrupt:
            print("interrupted: nothing partial was left (outputs are written whole or not at "
                  "all).", file=sys.stderr)
            return INTERRUPTED
        finally:
            signal.signal(signal.SIGTERM, previous)
        return 0
    return main


BAD_INPUT = 2             # the programs' status for bad input, flags included
HELP_FLAGS = ("--help", "-h", "-?", "--helpshort")


class _UsageError(Exception):
    """Flags that cannot be parsed, a missing required flag, or a positional argument."""


FLAG_TYPES = {"int": "an integer", "float": "a number", "bool": "true or false"}


def _flagfile_of(argv, name):
    """The --flagfile among `argv` that sets --`name` (or --no`name`), else None."""
    files = [a.split("=", 1)[1] for a in argv if a.startswith("--flagfile=")]
    files += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--flagfile"]
    for path in files:
        try:
            lines = [line.strip() for line in open(path, encoding="utf-8")]
        except OSError:
            continue
        if any(line.split("=", 1)[0] in (f"--{name}", f"--no{name}") for line in lines):
            return path
    return None


def _flag_error(err, argv):
    """absl's parse error in one line, with the expected type of a bad value and the flagfile
    that holds the flag."""
    text = str(err)
    name = getattr(err, "flagname", None)
    if name is None and text.startswith("flag --"):
        name = text[len("flag --"):].split("=", 1)[0].split(":", 1)[0]
    if not name:
        return text
    if name in FLAGS and isinstance(err, flags.IllegalFlagValueError):
        kind = FLAGS[name].flag_type()
        text += f" (expected {FLAG_TYPES.get(kind, kind)})"
    path = _flagfile_of(argv, name)
    return f"{path}: {text}" if path else text


def _parse(argv, required):
    """Parses `argv` (with the program's name first) into FLAGS; raises _UsageError."""
    try:
        rest = FLAGS(list(argv))
    except flags.Error as err:
        raise _UsageError(_flag_error(err, list(argv))) from None
    missing = [name for name in required if FLAGS[name].value is None]
    if missing:
        raise _UsageError("missing " + ", ".join(f"--{name}" for name in missing)
                          + " (--help lists the flags).")
    if len(rest) > 1:
        raise _UsageError(f"unexpected argument {rest[1]!r}: flags are written --name=value "
                          "(--help lists them).")
    return rest


def configure_logging():
    """hved_tf's log lines: information on stdout as is, warnings on stderr as `warning: `."""
    logger = logging.getLogger("hved_tf")
    out = logging.StreamHandler(sys.stdout)
    out.addFilter(lambda record: record.levelno < logging.WARNING)
    out.setFormatter(logging.Formatter("%(message)s"))
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    err.setFormatter(logging.Formatter("warning: %(message)s"))
    logger.handlers = [out, err]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not quiet.VERBOSE:
        # TensorFlow's Python notices (an export's renamed input names, its saver's timings)
        # say nothing a user can act on; absl's start of the program resets their level.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        absl_logging.set_verbosity(absl_logging.WARNING)    # TensorFlow logs through absl too


@dataclasses.dataclass(frozen=True)
class Program:
    """One command line: its flags, what it runs, its required flags, its own exit codes.
    `no_arguments`: what to say when it is run with none (its help is printed first)."""
    define_flags: Callable
    run: Callable
    required: tuple = ()
    exit_codes: tuple = ()
    name: str = ""
    doc: str = ""
    no_arguments: str = ""

    def _define(self):
        GROUPS.clear()
        self.define_flags()

    def _usage(self, argv):
        """(exit status, or None to go on): --help, no arguments, flags that do not parse."""
        if any(arg in HELP_FLAGS for arg in argv[1:]):
            print(help_text(self.name, self.doc, GROUPS))
            return 0
        if len(argv) == 1 and (self.required or self.no_arguments):
            print(help_text(self.name, self.doc, GROUPS))
            missing = ", ".join(f"--{n}" for n in self.required)
            print(f"error: {self.no_arguments or 'missing ' + missing}", file=sys.stderr)
            return BAD_INPUT
        try:
            _parse(argv, self.required)
        except _UsageError as err:
            print(f"error: {err}", file=sys.stderr)
            return BAD_INPUT
        return None

    def main(self):
        """Runs as a program (`python -m ...` or an installed command): absl parses sys.argv
        and the process exits with the status."""
        self._define()
        app.define_help_flags()                      # --helpfull, as absl's own programs
        status = self._usage(sys.argv)
        if status is not None:
            sys.exit(status)

        def run():
            configure_logging()
            self.run()
        app.run(absl_main(run, self.exit_codes), flags_parser=lambda argv: [argv[0]])

    def call(self, argv):
        """Runs with the arguments `argv` (without the program name) in this process; returns
        the exit status. The program's flags are defined for the call only."""
        before = set(FLAGS)
        self._define()
        try:
            status = self._usage(["hved_tf", *argv])
            if status is not None:
                return status
            return absl_main(self.run, self.exit_codes)(["hved_tf"])
        finally:
            for name in set(FLAGS) - before:
                delattr(FLAGS, name)


def define_inference_flags(samples_help="z samples averaged for the segmentation (U-HVED)."):
    with flag_group("inference (sliding windows)"):
        flags.DEFINE_list("window", ["auto"], "Sliding window X,Y,Z, or auto: the whole cropped "
                          "volume when it fits 200x200x160 voxels, else the training patch.")
        flags.DEFINE_float("overlap", 0.5, "Overlap of neighbouring windows, in [0, 1).")
        flags.DEFINE_integer("border", 0, "Voxels cut from each side of a window (the "
                             "original: 10).")
        flags.DEFINE_enum("blend", "gaussian", list(BLENDS), "Weights where windows overlap.")
        flags.DEFINE_integer("samples", 10, samples_help)
        flags.DEFINE_integer("batch_size", 1, "Windows per forward pass.")
        flags.DEFINE_bool("tta", False, "Test-time augmentation: average over the mirror "
                          "flips of --tta_axes (8 flips for all three axes) composed with the z "
                          "samples; the variance and uncertainty include the spread.")
        flags.DEFINE_list("tta_axes", ["0", "1", "2"], "Axes mirrored by --tta.")
        flags.DEFINE_enum("inference_precision", "float32", list(INFERENCE_PRECISIONS),
                          "bfloat16: convolutions in bfloat16 where the CPU has avx512_bf16 (or "
                          "a GPU), else float32 with a warning; docs/benchmarks/performance.md.")
        flags.DEFINE_bool("prior_correction", True, "Use a run's prior correction when it has "
                          "one (trained with --prior_correction: its class_prior.json); "
                          "--noprior_correction: the network's probabilities as they are.")
    with flag_group("post-processing (off by default: the paper's protocol)"):
        flags.DEFINE_integer("et_threshold", 0, "ETpp (RFNet's rule with 500): fewer enhancing "
                             "voxels than this are relabelled necrotic core (0: off).")
        flags.DEFINE_integer("min_component", 0, "Remove whole-tumour components smaller than "
                             "this many voxels (0: off).")
        flags.DEFINE_bool("largest_component", False, "Keep the largest whole-tumour component "
                          "only.")


def define_grid_flags():
    with flag_group("voxel size and grids (docs/how-to/your-own-scans.md)"):
        flags.DEFINE_bool("keep_input_spacing", False, "Segment inputs on their own grid even "
                          "when their voxel size differs from the model's (warned); default: "
                          "resample them to the model's and bring the outputs back.")
        flags.DEFINE_string("reference_sequence", "", "Sequences on different grids of one "
                            "exam are resampled onto this one's grid (T1, T1c, T2 or FLAIR); "
                            "default: the one with the finest voxels.")


def grid_options(f=FLAGS):
    """The validated GridOptions of the grid flags."""
    reference = f.reference_sequence
    reference = next((m for m in MODALITIES if m.lower() == reference.lower()), reference)
    return GridOptions(resample=not f.keep_input_spacing, reference=reference).validate()


def define_protocol_flags():
    with flag_group("protocol"):
        flags.DEFINE_enum("protocol", "paper", list(PROTOCOLS), "paper: the inference flags "
                          "above, scored as this repository's Table 1; original: the release's "
                          "evaluation (128^3 windows, border 10, later windows overwrite earlier "
                          "ones, one random z draw, the final weights), replacing them; brats: "
                          "lesion-wise Dice first, HD95 374 for an empty region; brats2025: "
                          "the same with the BraTS 2025 instance-wise scores (detection F1, "
                          "PQ); rfnet: ETpp (500 voxels) and raw beside post-processed Dice. The "
                          "protocol table of docs/how-to/predict-and-evaluate.md says exactly.")
        flags.DEFINE_string("weights", "", f"Of a run folder: {' | '.join(WEIGHTS)} (default: "
                            "best, or final with --protocol=original).")


def protocol_settings(f=FLAGS):
    """(InferenceOptions, "best" | "final") of the inference and protocol flags."""
    return (protocol_options(f.protocol, inference_options(f)),
            protocol_weights(f.protocol, f.weights))


def parse_window(values):
    """None for ["auto"] (or nothing), else three integers."""
    window = cfg_parse_window(values)
    return None if window == "auto" else window


def inference_options(f=FLAGS):
    """The validated InferenceOptions of the inference flags."""
    return InferenceOptions(window=parse_window(f.window), border=f.border, overlap=f.overlap,
                            blend=f.blend, batch_size=f.batch_size, num_samples=f.samples,
                            et_threshold=f.et_threshold, min_component=f.min_component,
                            largest_component=f.largest_component,
                            prior_correction=f.prior_correction,
                            precision=f.inference_precision,
                            tta_axes=parse_axes(f.tta_axes) if f.tta else ()).validate()


def parse_axes(values):
    try:
        return tuple(int(a) for a in values)
    except ValueError:
        raise ValueError(f"--tta_axes must be axes among 0, 1, 2, got {','.join(values)}.") \
            from None
