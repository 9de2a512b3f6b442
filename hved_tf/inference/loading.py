"""Trained models and their segmenters from disk: `load_trained`, `open_segmenter`.

`path` is a training run folder (its `run_config.json` rebuilds the model, `best.weights.h5`
or else `model.weights.h5` fills it, its `hist.txt` or the run's `--hist_file` gives the
landmarks) or a `.keras` file (landmarks from a `hist.txt` beside it, or `hist_file`). The
identity recorded in reports: the source, the model's name and options, the weights file and
its SHA-256. A `class_prior.json` in the folder (a run trained with `--prior_correction`)
gives the class weights of its prior correction. Anything else (a folder without a finished model, a file that is not one of our
models) is refused with a message saying what was expected.

`open_segmenter(path, hist_file, options)` gives the Segmenter of any of them, of a list of
them (their ensemble), and of an export
(`hved_tf.inference.exported`: the settings frozen at export, recorded in its
assets/hved_export.json with the identity of the model it came from).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
import os
from typing import Any

import h5py
import keras

from hved_tf.config import InferenceOptions, TrainConfig
from hved_tf.data.class_prior import read_class_weights
from hved_tf.inference.ensemble import EnsembleSegmenter
from hved_tf.inference.exported import ExportSegmenter
from hved_tf.inference.segmenter import KerasSegmenter, model_facts
from hved_tf.models import MODELS, build_model
from hved_tf.preprocessing.histogram import read_niftynet_landmarks

DEFAULT_WINDOW = (112, 112, 112)


@dataclasses.dataclass
class TrainedModel:
    """A trained model as a run folder or .keras file gives it."""
    model: object                   # a HeteroModalModel
    landmarks: dict | None          # modality -> landmarks, or None when unknown
    window: tuple                   # the training patch: the default inference window
    identity: dict
    class_weights: tuple = ()       # its prior correction (hved_tf.data.class_prior), or ()
    spacing: tuple = ()             # the voxel size (mm) it was trained at; (): unknown

    @property
    def name(self) -> str:
        """The model's kind (a name of the registry)."""
        return self.identity["model"]


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _landmarks(candidates, hist_file):
    if hist_file:
        return read_niftynet_landmarks(hist_file), str(pathlib.Path(hist_file).resolve())
    for path in candidates:
        if path and pathlib.Path(path).is_file():
            return read_niftynet_landmarks(path), str(pathlib.Path(path).resolve())
    return None, None


def _from_run_dir(run_dir, hist_file, weights="best"):
    config_path = run_dir / "run_config.json"
    if not config_path.is_file():
        raise ValueError(f"{run_dir} is not a training run folder of hved_tf (no "
                         "run_config.json). Give a run folder or a .keras file.")
    try:
        config = TrainConfig.from_dict(json.loads(config_path.read_text()))
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{config_path} is not a readable run config ({err}).") from None
    names = {"best": ("best.weights.h5", "model.weights.h5"),
             "final": ("model.weights.h5",)}[weights]
    chosen = next((run_dir / n for n in names if (run_dir / n).is_file()), None)
    if chosen is None and weights == "final":
        raise ValueError(f"{run_dir} holds no final weights (model.weights.h5): the run has "
                         "not finished; use --weights=best, or let it finish.")
    if chosen is None:
        raise ValueError(f"{run_dir} holds no finished model (neither best.weights.h5 nor "
                         "model.weights.h5): let the training run reach its first validation, "
                         "or give another run folder.")
    weights = chosen
    model = build_model(config.model.name, **config.model.build_options())
    load_weights(model, weights, config, config_path)
    landmarks, source = _landmarks([run_dir / "hist.txt", config.data.hist_file], hist_file)
    identity = {"source": str(run_dir.resolve()), "model": config.model.name,
                "options": config.model.build_options(), "weights": str(weights.resolve()),
                "sha256": _sha256(weights), "landmarks": source}
    identity["spacing_mm"] = list(config.data.spacing())
    return _with_prior(TrainedModel(model, landmarks, tuple(config.patch), identity,
                                    spacing=config.data.spacing()), run_dir)


def _with_prior(trained, folder):
    """The TrainedModel with the prior correction of `folder`'s class_prior.json, if any (also
    in its identity, which reports record)."""
    trained.class_weights = read_class_weights(folder)
    if trained.class_weights:
        trained.identity["class_weights"] = list(trained.class_weights)
    return trained


def _kernel_shapes(model_or_path):
    """The distinct shapes of the convolution kernels (arrays of rank >= 2) of a built model
    or of a weights file (whatever else the file holds: optimiser slots repeat them)."""
    if isinstance(model_or_path, pathlib.Path):
        shapes = set()
        with h5py.File(model_or_path, "r") as f:
            f.visititems(lambda name, obj: shapes.add(tuple(obj.shape))
                         if isinstance(obj, h5py.Dataset) and len(obj.shape) >= 2 else None)
        return shapes
    return {tuple(v.shape) for v in model_or_path.weights if len(v.shape) >= 2}


def _disagreement(weights, config):
    """"option: run config X, weights Y" for the identity option(s) the weights file says
    otherwise, or None when no other base_filters/levels explain it (a damaged file)."""
    try:
        stored = _kernel_shapes(weights)
    except OSError:
        return None
    model = config.model
    base = dataclasses.asdict(model)
    widths = [s[-1] for s in stored]
    ours = [s[-1] for s in _kernel_shapes(build_model(model.name, **model.build_options()))]
    if not widths or not ours:
        return None
    guess = max(2, model.base_filters * max(widths) // max(ours))
    for filters in dict.fromkeys((guess, model.base_filters)):
        for levels in range(2, 7):
            candidate = dataclasses.replace(model, base_filters=filters, levels=levels)
            if _kernel_shapes(build_model(candidate.name, **candidate.build_options())) \
                    == stored:
                changed = [k for k in ("base_filters", "levels")
                           if getattr(candidate, k) != base[k]]
                return "; ".join(f"--{k}: the run config says {base[k]}, the weights "
                                 f"{getattr(candidate, k)}" for k in changed) or None
    return None


def load_weights(model: Any, weights: pathlib.Path, config: Any,
                 config_path: pathlib.Path) -> None:
    """Loads a weights file, or says in one line why not.

    Args:
        model: the built model.
        weights: the .weights.h5 file.
        config: the run's TrainConfig.
        config_path: its run_config.json (for messages).

    Raises:
        ValueError: a run config that disagrees with the weights (naming the option and both
            values), or a damaged file.
    """
    try:
        model.load_weights(weights)
    except Exception as err:  # h5py and Keras raise many kinds for a damaged or foreign file
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        disagreement = _disagreement(weights, config)
        if disagreement:
            raise ValueError(f"{config_path} and {weights} disagree ({disagreement}): the "
                             "weights come from another run; use its folder.") from None
        raise ValueError(f"{weights}: cannot load the weights ({reason[:200]}); the file is "
                         "damaged or incomplete. Use another weights file (e.g. a step "
                         "checkpoint of the run) or train again.") from None


def _from_keras_file(path, hist_file):
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many kinds for a foreign or damaged file
        raise ValueError(f"{path} is not a model saved by hved_tf ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}).") from None
    if getattr(model, "kind", None) not in MODELS:
        raise ValueError(f"{path} holds a {type(model).__name__}, not one of hved_tf's models "
                         f"({', '.join(MODELS)}).")
    landmarks, source = _landmarks([path.parent / "hist.txt"], hist_file)
    window, spacing = DEFAULT_WINDOW, ()
    config_path = path.parent / "run_config.json"
    if config_path.is_file():
        config = TrainConfig.from_dict(json.loads(config_path.read_text()))
        window, spacing = config.patch, config.data.spacing()
    identity = {"source": str(path.resolve()), "model": model.kind, "options": {},
                "weights": str(path.resolve()), "sha256": _sha256(path), "landmarks": source}
    if spacing:
        identity["spacing_mm"] = list(spacing)
    return _with_prior(TrainedModel(model, landmarks, window, identity, spacing=spacing),
                       path.parent)


def is_export(path: str | os.PathLike) -> bool:
    """Whether a path is a SavedModel folder.

    Args:
        path: any path.

    Returns:
        True when it holds saved_model.pb.
    """
    return pathlib.Path(path, "saved_model.pb").is_file()


def load_trained(path: str | os.PathLike, hist_file: str | None = None,
                 weights: str = "best") -> TrainedModel:
    """A trained model from a run folder or a .keras file (see the module docstring).

    Args:
        path: the folder or file.
        hist_file: landmarks when it has none.
        weights: of a run folder: "best" (the best validation's when there is one) or "final".

    Returns:
        The TrainedModel.

    Raises:
        ValueError: naming the path and what it is instead.
    """
    path = pathlib.Path(path)
    if is_export(path):
        raise ValueError(f"{path} is an export: give the training run folder or the .keras "
                         "file it was made from.")
    if path.is_dir():
        return _from_run_dir(path, hist_file, weights)
    if path.is_file():
        if path.suffix != ".keras":
            raise ValueError(f"{path}: expected a training run folder or a .keras file.")
        return _from_keras_file(path, hist_file)
    raise ValueError(f"--model {path}: no such file or folder.")


def keras_segmenter(trained: TrainedModel, options: InferenceOptions = InferenceOptions(),
                    synthesise: bool | str = True) -> KerasSegmenter:
    """A KerasSegmenter over a trained model, with what the model brings (`model_facts`).

    Args:
        trained: the TrainedModel.
        options: the user's inference settings.
        synthesise: True, "missing" or False (`KerasSegmenter`).

    Returns:
        The segmenter.
    """
    return KerasSegmenter(trained.model, options, trained.landmarks, trained.identity,
                          synthesise=synthesise, spacing=trained.spacing,
                          facts=model_facts(trained))


def open_segmenter(path: Any, hist_file: str | None = None,
                   options: InferenceOptions = InferenceOptions(), weights: str = "best",
                   name: str | None = None, synthesise: bool | str = True) -> Any:
    """The Segmenter of a run folder, a .keras file or an export (whose settings are its own);
    of several of them (a list of paths), their ensemble (`hved_tf.inference.ensemble`).

    Args:
        path: a path, or a list or tuple of them.
        hist_file: landmarks when a model folder has none.
        options: the user's inference settings.
        weights: "best" or "final".
        name: an ensemble's name in reports.
        synthesise: True, "missing" or False (`KerasSegmenter`).

    Returns:
        A KerasSegmenter, ExportSegmenter or EnsembleSegmenter.
    `synthesise`: see `KerasSegmenter` (an export synthesises as it was exported)."""
    if isinstance(path, (list, tuple)):
        if len(path) == 1:
            return open_segmenter(path[0], hist_file, options, weights, synthesise=synthesise)
        exports = [str(p) for p in path if is_export(p)]
        if exports:
            raise ValueError(f"{exports[0]} is an export: its settings and label convention are "
                             "frozen, so it cannot join an ensemble; give the training run "
                             "folders (or .keras files) it was made from.")
        members = [load_trained(p, hist_file, weights) for p in path]
        return EnsembleSegmenter(members, options, name or "ensemble of " + ", ".join(
            pathlib.Path(p).name for p in path), synthesise)
    if is_export(path):
        return ExportSegmenter(path)
    return keras_segmenter(load_trained(path, hist_file, weights), options, synthesise)
