"""Trained models and their segmenters from disk: `load_trained`, `open_segmenter`.

`path` is a training run folder (its `run_config.json` rebuilds the model, `best.weights.h5`
or else `model.weights.h5` fills it, its `hist.txt` or the run's `--hist_file` gives the
landmarks) or a `.keras` file (landmarks from a `hist.txt` beside it, or `hist_file`). The
identity recorded in reports: the source, the model's name and options, the weights file and
its SHA-256. Anything else (a folder without a finished model, a file that is not one of our
models) is refused with a message saying what was expected.

`open_segmenter(path, hist_file, options)` gives the Segmenter of any of them and of an export
(`hved_tf.inference.exported`: the settings frozen at export, recorded in its
assets/hved_export.json with the identity of the model it came from).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib

import keras

from hved_tf.config import InferenceOptions, TrainConfig
from hved_tf.inference.exported import ExportSegmenter
from hved_tf.inference.segmenter import KerasSegmenter
from hved_tf.models import MODELS, build_model
from hved_tf.preprocessing.histogram import read_niftynet_landmarks

DEFAULT_WINDOW = (112, 112, 112)


@dataclasses.dataclass
class TrainedModel:
    model: object                   # a HeteroModalModel
    landmarks: dict | None          # modality -> landmarks, or None when unknown
    window: tuple                   # the training patch: the default inference window
    identity: dict

    @property
    def name(self):
        return self.identity["model"]


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _landmarks(candidates, hist_file):
    if hist_file:
        return read_niftynet_landmarks(hist_file), str(hist_file)
    for path in candidates:
        if path and pathlib.Path(path).is_file():
            return read_niftynet_landmarks(path), str(path)
    return None, None


def _from_run_dir(run_dir, hist_file):
    config_path = run_dir / "run_config.json"
    if not config_path.is_file():
        raise ValueError(f"{run_dir} is not a training run folder of hved_tf (no "
                         "run_config.json). Give a run folder or a .keras file.")
    try:
        config = TrainConfig.from_dict(json.loads(config_path.read_text()))
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{config_path} is not a readable run config ({err}).") from None
    weights = next((run_dir / n for n in ("best.weights.h5", "model.weights.h5")
                    if (run_dir / n).is_file()), None)
    if weights is None:
        raise ValueError(f"{run_dir} holds no finished model (neither best.weights.h5 nor "
                         "model.weights.h5): let the training run reach its first validation, "
                         "or give another run folder.")
    model = build_model(config.model.name, **config.model.build_options())
    model.load_weights(weights)
    landmarks, source = _landmarks([run_dir / "hist.txt", config.data.hist_file], hist_file)
    identity = {"source": str(run_dir.resolve()), "model": config.model.name,
                "options": config.model.build_options(), "weights": str(weights.resolve()),
                "sha256": _sha256(weights), "landmarks": source}
    return TrainedModel(model, landmarks, tuple(config.patch), identity)


def _from_keras_file(path, hist_file):
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # Keras raises many kinds for a foreign or damaged file
        raise ValueError(f"{path} is not a model saved by hved_tf ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}).") from None
    if getattr(model, "kind", None) not in MODELS:
        raise ValueError(f"{path} holds a {type(model).__name__}, not one of hved_tf's models "
                         f"({', '.join(MODELS)}).")
    landmarks, source = _landmarks([path.parent / "hist.txt"], hist_file)
    window = DEFAULT_WINDOW
    config_path = path.parent / "run_config.json"
    if config_path.is_file():
        window = TrainConfig.from_dict(json.loads(config_path.read_text())).patch
    identity = {"source": str(path.resolve()), "model": model.kind, "options": {},
                "weights": str(path.resolve()), "sha256": _sha256(path), "landmarks": source}
    return TrainedModel(model, landmarks, window, identity)


def is_export(path):
    return pathlib.Path(path, "saved_model.pb").is_file()


def load_trained(path, hist_file=None):
    """A `TrainedModel` from a run folder or a .keras file (see the module docstring)."""
    path = pathlib.Path(path)
    if is_export(path):
        raise ValueError(f"{path} is an export: give the training run folder or the .keras "
                         "file it was made from.")
    if path.is_dir():
        return _from_run_dir(path, hist_file)
    if path.is_file():
        if path.suffix != ".keras":
            raise ValueError(f"{path}: expected a training run folder or a .keras file.")
        return _from_keras_file(path, hist_file)
    raise ValueError(f"--model {path}: no such file or folder.")


def keras_segmenter(trained, options=InferenceOptions(), synthesise=True):
    """A KerasSegmenter over a TrainedModel, its training patch as the fallback window."""
    options = dataclasses.replace(options, fallback_window=tuple(trained.window))
    return KerasSegmenter(trained.model, options, trained.landmarks, trained.identity,
                          synthesise)


def open_segmenter(path, hist_file=None, options=InferenceOptions()):
    """The Segmenter of a run folder, a .keras file or an export (whose settings are its own)."""
    if is_export(path):
        return ExportSegmenter(path)
    return keras_segmenter(load_trained(path, hist_file), options)
