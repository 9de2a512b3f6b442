"""A Segmenter over an hved_tf export (a SavedModel written by `hved_tf.serving.export`).

`ExportSegmenter(path)` reads the export's `assets/hved_export.json` (who made it, its label
convention, its inference settings, its model's capabilities) and runs its signatures:
`segment_raw` for raw RAS volumes (the intensity chain and the crop are inside the graph) and
`segment_volume` for prepared ones. Its settings were frozen at export; `landmarks` is None
(they are constants of the graph). Exports written before the capabilities were recorded get
them from the registry's model class.
"""
from __future__ import annotations

import json
import pathlib
import time
from typing import Any, Callable
import os

import numpy as np
import tensorflow as tf

from hved_tf.inference.segmenter import OnePreparation, finish, whole_box
from hved_tf.modalities import to_training_labels
from hved_tf.models import MODELS, Capabilities

EXPORT_METADATA = "hved_export.json"     # in the export's assets/


def read_export_metadata(path: str | os.PathLike) -> dict:
    """The metadata an hved_tf export carries.

    Args:
        path: the export's folder.

    Returns:
        Its hved_export.json.

    Raises:
        ValueError: saying what `path` is instead.
    """
    meta_path = pathlib.Path(path) / "assets" / EXPORT_METADATA
    if not meta_path.is_file():
        raise ValueError(f"{path} is a SavedModel but not an hved_tf export (no "
                         f"assets/{EXPORT_METADATA}): only exports written by "
                         "`python -m hved_tf.export` are loaded.")
    try:
        meta = json.loads(meta_path.read_text())
    except (ValueError, OSError) as err:
        raise ValueError(f"{meta_path} is unreadable ({err}); export the model again.") from None
    missing = [k for k in ("identity", "inference", "label_convention") if k not in meta]
    if not isinstance(meta, dict) or missing:
        raise ValueError(f"{meta_path} lacks {', '.join(missing) or 'its fields'}: not written "
                         "by hved_tf.export; export the model again.")
    return meta


def load_saved_model(path: str | os.PathLike) -> Any:
    """An export loaded.

    Args:
        path: the export's folder.

    Returns:
        `tf.saved_model.load`'s object.

    Raises:
        ValueError: naming a damaged or incomplete export.
    """
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as err:  # TensorFlow raises many kinds for a damaged SavedModel
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise ValueError(f"{path}: cannot load the export ({type(err).__name__}: {reason}); "
                         "it is damaged or incomplete: export the model again.") from None
    absent = [s for s in ("segment_raw", "segment_volume") if s not in loaded.signatures]
    if absent:
        raise ValueError(f"{path}: the export lacks the signature(s) {', '.join(absent)}; "
                         "export the model again with this version of hved_tf.")
    return loaded


def export_capabilities(meta: dict) -> Capabilities:
    """The capabilities of an export's model.

    Args:
        meta: its metadata.

    Returns:
        The recorded Capabilities (older exports: from their model's kind and subset).
    """
    recorded = meta.get("capabilities")
    if recorded:
        return Capabilities(**recorded)
    cls = MODELS[meta["identity"]["model"]]
    return Capabilities(subset=meta.get("subset"), synthesises=cls.synthesises,
                        latent_samples=cls.latent_samples)


class ExportSegmenter(OnePreparation):
    """A Segmenter over an export, run with the settings frozen in it."""
    landmarks = None                   # frozen inside the graph

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.meta = read_export_metadata(path)
        self.loaded = load_saved_model(path)
        self.capabilities = export_capabilities(self.meta)
        self.label_convention = self.meta["label_convention"]
        self.identity = {**self.meta["identity"], "export": str(self.path.resolve())}
        self.options = self.meta["inference"]
        # Exports written before ModelFacts kept these among their inference settings.
        self.window = tuple(self.meta.get("training_patch")
                            or self.options["fallback_window"])
        self.class_weights = tuple(self.meta.get("class_weights",
                                                 self.options.get("class_weights", ())))
        self.spacing = tuple(self.meta.get("spacing_mm", ()))   # (): an older export

    def _run(self, signature, image, mask, box):
        self.refuse(mask)
        start = time.perf_counter()
        function = self.loaded.signatures[signature]
        inputs = {"image": tf.constant(np.asarray(image, np.float32)),
                  "mask": tf.constant(np.asarray(mask, np.float32))}
        if "spacing" in function.structured_input_signature[1]:
            # The image is at the model's voxel size already (hved_tf.inference.spacing
            # resamples on the host, as for a Keras model): the graph keeps it as it is.
            inputs["spacing"] = tf.constant(self.spacing or (1.0, 1.0, 1.0), tf.float32)
        out = function(**inputs)
        out = {k: v.numpy() for k, v in out.items()}
        extra = {"variance": (out["variance"] if self.capabilities.latent_samples
                              and self.options["num_samples"] > 1 else None),
                 "recon": out["recon"] if self.capabilities.synthesises else None}
        result = finish(out["seg_probabilities"], extra, box,
                        {"preprocess_and_inference_s": time.perf_counter() - start},
                        settings={"export": self.options})
        # The export's own argmax and entropy, in its label convention; its post-processing
        # (the ET rule only) ran in the graph.
        result.outputs["labels"] = to_training_labels(out["seg_labels"], self.label_convention)
        result.outputs["entropy"] = out["uncertainty"]
        return result

    def segment_raw(self, image: np.ndarray, mask: np.ndarray,
                    progress: Callable | None = None,
                    flipped: tuple = (False, False, False)) -> Any:
        """Raw intensities segmented by the export's `segment_raw` signature, which takes RAS
        voxels only: its crop box follows the rule in RAS order (`flipped` cannot reach it;
        the box differs from the file-order one by at most a voxel, on axes under 128 voxels
        of brain).

        Args and Returns: as `KerasSegmenter.segment_raw`.
        """
        image = np.asarray(image, np.float32)
        result = self._run("segment_raw", image, mask, whole_box(image.shape[:3]))
        result.outputs["image"] = image
        return result

    def segment_prepared(self, prepared: Any, mask: np.ndarray,
                         progress: Callable | None = None) -> Any:
        """A prepared subject segmented by the export's `segment_volume` signature (one call:
        no progress is reported).

        Args and Returns: as `OnePreparation.segment_prepared`.
        """
        return self._run("segment_volume", prepared.image, mask, prepared.box)
