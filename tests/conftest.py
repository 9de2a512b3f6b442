"""Shared test set-up: quiet TensorFlow, the original release's reference folder, and the
process-wide state each test leaves as it found it."""
import dataclasses
import importlib
import importlib.util
import inspect
import logging
import os
import re
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import hved_tf  # noqa: E402,F401  (before any TensorFlow import: its oneDNN setting)

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


SPAWNS = ("sys.executable", "saved_model_cli", "Popen(")   # a Python process or a tool


def _source(function):
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def _sources(item):
    """The source of a test, of the fixtures it uses and of the module's functions it calls."""
    function = getattr(item, "function", None)
    texts = [_source(function)]
    for name in item.fixturenames:
        for fixture in item._fixtureinfo.name2fixturedefs.get(name, ()):
            texts.append(_source(fixture.func))
    module = getattr(item, "module", None)
    called = set(re.findall(r"\b(_?\w+)\(", "\n".join(texts)))
    for name in called:
        helper = getattr(module, name, None)
        if inspect.isfunction(helper) and helper.__module__ == getattr(module, "__name__", ""):
            texts.append(_source(helper))
    return "\n".join(texts)


def pytest_collection_modifyitems(config, items):
    """Marks each test with its tier: `subprocess` (it starts a process: its source, a fixture
    or a helper of its module says so), `cli` (a command through Program.call) or `unit`;
    `pytest -m unit` runs the fast tier alone."""
    for item in items:
        text = _sources(item)
        if any(word in text for word in SPAWNS):
            item.add_marker(pytest.mark.subprocess)
        elif "cli" in item.fixturenames or "PROGRAM.call" in text:
            item.add_marker(pytest.mark.cli)
        else:
            item.add_marker(pytest.mark.unit)


def tool_module(path):
    """A tool of tools/ (e.g. "tools/dev/flags_reference.py") loaded as a module."""
    spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_dir():
    """../shared/reference (or $HVED_REFERENCE_DIR), or None when absent."""
    env = os.environ.get("HVED_REFERENCE_DIR")
    candidates = [pathlib.Path(env)] if env else []
    candidates += [REPO.parent / "shared" / "reference", REPO.parent.parent / "shared" / "reference"]
    for path in candidates:
        if path.is_dir():
            return path
    return None


@pytest.fixture(autouse=True)
def _process_globals_reset():
    """Flags a test defines on absl's FLAGS are removed after it, and Keras' global precision
    policy is put back: tests share one process, and these two globals made some of them
    depend on the order they ran in."""
    from absl import flags
    before = set(flags.FLAGS)
    keras = sys.modules.get("keras")
    policy = keras.mixed_precision.global_policy().name if keras else "float32"
    yield
    for name in set(flags.FLAGS) - before:
        delattr(flags.FLAGS, name)
    keras = sys.modules.get("keras")
    if keras and keras.mixed_precision.global_policy().name != policy:
        keras.mixed_precision.set_global_policy(policy)


@dataclasses.dataclass
class Outcome:
    """A command's exit status and what it printed."""
    code: int
    out: str
    err: str

    def __str__(self):
        return f"exit {self.code}\n--- stdout\n{self.out[-3000:]}\n--- stderr\n{self.err[-3000:]}"


@pytest.fixture
def cli(capfd):
    """`cli("predict", "--flag=value", ...)`: a command run in this process (the code path of
    the installed command, without starting TensorFlow again), as an Outcome. Real processes
    are kept for what only they show: start-up noise, signals, environment variables."""
    def run(name, *args):
        program = importlib.import_module(f"hved_tf.{name}").PROGRAM
        capfd.readouterr()
        code = program.call([str(a) for a in args])
        out, err = capfd.readouterr()
        return Outcome(code, out, err)
    return run


@pytest.fixture
def warnings_said(caplog):
    """The hved_tf logger's records (it does not propagate once a CLI has configured it)."""
    logger = logging.getLogger("hved_tf")
    logger.addHandler(caplog.handler)
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(level)


@pytest.fixture
def reference():
    path = reference_dir()
    if path is None:
        pytest.skip("The original release's reference folder (../shared/reference or "
                    "$HVED_REFERENCE_DIR) is not here; skipping the comparison with it.")
    return path


def read_variable_list(path):
    """{name: shape tuple} from a reference .tsv (variables with an empty shape left out)."""
    shapes = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, _, shape = line.partition("\t")
        if shape.strip():
            shapes[name.strip()] = tuple(int(s) for s in shape.split(","))
    return shapes


def make_run_dir(folder, name="u_hved", **options):
    """A run folder as training leaves it (config, weights, landmarks), with an untrained tiny
    model: enough to exercise inference plumbing."""
    import numpy as np

    from hved_tf.config import ModelConfig, PipelineConfig, TrainConfig
    from hved_tf.data.synthetic import make_phantom
    from hved_tf.models import build_model
    from hved_tf.modalities import MODALITIES
    from hved_tf.preprocessing.histogram import train_landmarks, write_niftynet_landmarks

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = TrainConfig(model=ModelConfig(name=name, base_filters=4, levels=3, **options),
                         run_dir=str(folder),
                         pipeline=PipelineConfig(window=(32, 32, 32))).validate()
    config.write(folder / "run_config.json")
    model = build_model(name, **config.model.build_options())
    model.save_weights(folder / "model.weights.h5")
    images = []
    for seed in range(2):
        volumes, _ = make_phantom((32, 32, 32), seed=[7, seed])
        images.append(np.stack([volumes[m] for m in MODALITIES], axis=-1))
    write_niftynet_landmarks(folder / "hist.txt", train_landmarks(images))
    return folder


# The tiny training run of the tests (32^3 phantoms and windows, a 3-level network of width 4):
# `tiny_flags(steps=2, validation_subsets="T1c")` is its flag list with some settings changed.
TINY_SETTINGS = {"data_root": "demo", "demo_subjects": 5, "demo_shape": "32,32,32",
                 "patch": "32,32,32", "base_filters": 4, "levels": 3, "windows_per_volume": 2,
                 "validation_every": 2, "validation_subsets": "T1c", "keep_checkpoints": 2}


def tiny_flags(**changes):
    """The tiny run's flags (`TINY_SETTINGS` updated by `changes`), as `--name=value`."""
    unknown = set(changes) - set(TINY_SETTINGS) - {"steps", "log_every", "scaling",
                                                   "flip_axes", "run_dir"}
    assert not unknown, f"tiny_flags: not a setting it knows: {unknown}"
    return [f"--{name}={value}" for name, value in {**TINY_SETTINGS, **changes}.items()]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    return make_run_dir(tmp_path_factory.mktemp("tiny_run") / "run")


# The inference settings of the shared tiny export: several 32^3 windows (the tiny run's patch)
# on a 37x29x33 volume, 3 z samples.
EXPORT_OPTIONS = dict(window=None, max_voxels=16 ** 3, overlap=0.5, blend="gaussian",
                      num_samples=3)


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory, tiny_run):
    """The tiny run exported once for the session (`EXPORT_OPTIONS`, brats2018 labels): an
    export takes about 20 s to trace; tests that change it work on a copy."""
    from hved_tf.config import ExportConfig, InferenceOptions
    from hved_tf.inference.loading import load_trained
    from hved_tf.serving.export import export_model

    return export_model(load_trained(tiny_run), ExportConfig(
        export_dir=str(tmp_path_factory.mktemp("export") / "hved"),
        inference=InferenceOptions(**EXPORT_OPTIONS), label_convention="brats2018"))


def segment(model, image, mask, options, facts=None):
    """The one segmentation path over a preprocessed volume, as a dict (tests' shorthand);
    `facts`: what the model brings (ModelFacts; default: the defaults)."""
    from hved_tf.config import ModelFacts
    from hved_tf.inference.segmenter import KerasSegmenter, whole_box

    seg = KerasSegmenter(model, options, facts=facts or ModelFacts()).segment_prepared_image(
        image, mask, whole_box(image.shape[:3]))
    return {**seg.outputs, "window": tuple(seg.settings["window_used"])}
