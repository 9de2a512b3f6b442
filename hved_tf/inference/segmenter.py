"""The one segmentation path: a `Segmenter` takes a subject's volumes and the modalities present
and returns every output, whatever model it runs.

    segmentation = segmenter.segment_raw(image, mask)            # raw RAS intensities
    segmentation = segmenter.segment_prepared(prepared, mask)    # a prepared (cached) subject
    segmentation.full("labels")                                  # on the input's whole grid

Two implementations share the interface: `KerasSegmenter` (here) over one of our Keras models
(the release's preprocessing, `sliding_window` over a `ModelPredictor`, the crop undone), and
`ExportSegmenter` (`hved_tf.inference.exported`) over an export's `segment_raw` and
`segment_volume` signatures; `EnsembleSegmenter` (`hved_tf.inference.ensemble`) averages
several Keras models. predict, evaluate, validation during training, the benchmarks and
the serving checks use them; none asks which kind it holds, they read `capabilities` (the
model's: a fixed subset or any, synthesis, latent samples) and `landmarks` (None when the
intensity chain is frozen inside, as in an export).

A `Segmentation` holds the outputs on the prepared (cropped) grid and the `box` placing it in
the input's grid: "labels" (training classes, uint8), "entropy" (nats), "probabilities"
[..., C], and where the model gives them "variance" (across z samples) and "recon" [..., 4]
(the four sequences, in the network's normalised units); `segment_raw` adds "image" (the
preprocessed input). `full(name)` returns an output on the input's whole grid (outside the box:
background, zero uncertainty, each synthesised sequence's minimum, a zero image).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Sequence

import numpy as np

from hved_tf.config import InferenceOptions, ModelFacts
from hved_tf.inference.postprocess import postprocess
from hved_tf.inference.precision import model_in_precision, precision_to_use
from hved_tf.inference.predictor import ModelPredictor
from hved_tf.inference.windows import Tiling, choose_window, entropy, sliding_window
from hved_tf.models import Capabilities
from hved_tf.preprocessing.crop import CropBox, uncrop
from hved_tf.preprocessing.normalise import prepare_image


@dataclasses.dataclass
class Segmentation:
    """One subject's segmentation: its outputs on the (cropped) grid they were computed on."""
    outputs: dict                # name -> array on the box's grid
    box: CropBox                 # where that grid sits in the input's grid
    timings: dict                # seconds, by stage
    settings: dict               # how it was computed (inference options, window used)

    @property
    def labels(self) -> np.ndarray:
        """The labels (training classes 0..3) on the box's grid."""
        return self.outputs["labels"]

    def __contains__(self, name):
        return name in self.outputs

    def full(self, name: str) -> np.ndarray:
        """An output on the input's whole grid (outside the box: certain background for the
        probabilities, each channel's minimum for images, 0 for labels).

        Args:
            name: a key of `outputs`.

        Returns:
            The output, uncropped.
        """
        value = self.outputs[name]
        if tuple(value.shape[:3]) == tuple(self.box.full_shape):
            return value
        if value.ndim == 3 or name == "image":
            return uncrop(value, self.box)
        if name == "probabilities":
            fill = np.eye(value.shape[-1], dtype=np.float32)[0]      # certain background
        else:
            fill = value.reshape(-1, value.shape[-1]).min(0)        # each channel's minimum
        out = np.broadcast_to(fill.astype(value.dtype), self.box.full_shape + value.shape[-1:])
        out = out.copy()
        out[self.box.slices] = value
        return out


def whole_box(shape: Sequence[int]) -> CropBox:
    """The box of a whole volume (nothing cropped).

    Args:
        shape: the volume's spatial shape.

    Returns:
        A CropBox from 0 to `shape`.
    """
    shape = tuple(int(s) for s in shape)
    return CropBox((0, 0, 0), shape, shape)


def finish(probabilities: np.ndarray, extra: dict, box: CropBox, timings: dict,
           settings: dict) -> Segmentation:
    """A Segmentation from the stitched probabilities and the other outputs.

    Args:
        probabilities: [x, y, z, C].
        extra: other outputs by name (None values left out).
        box: where the grid sits in the input's.
        timings: seconds by stage.
        settings: how it was computed.

    Returns:
        The Segmentation, with labels (argmax) and entropy added.
    """
    outputs = {"probabilities": probabilities,
               "labels": np.argmax(probabilities, axis=-1).astype(np.uint8),
               "entropy": entropy(probabilities).numpy()}
    outputs.update({k: v for k, v in extra.items() if v is not None})
    return Segmentation(outputs, box, timings, settings)


def model_facts(trained: Any) -> ModelFacts:
    """What a loaded model brings to inference.

    Args:
        trained: a `hved_tf.inference.loading.TrainedModel`.

    Returns:
        Its training patch and its prior correction's class weights, checked.
    """
    return ModelFacts(patch=tuple(trained.window),
                      class_weights=tuple(trained.class_weights)).validate()


RENORMALISE_FLOOR = 1e-12      # the smallest sum the prior correction divides by


def prior_corrected(probabilities: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Probabilities under the prior correction (`hved_tf.data.class_prior`).

    Args:
        probabilities: [..., C].
        weights: C class weights (empty: none).

    Returns:
        The probabilities times the weights, renormalised (float32); unchanged for no weights.
    """
    if not weights:
        return probabilities
    weighted = np.asarray(probabilities) * np.asarray(weights, np.float32)
    return (weighted / np.maximum(weighted.sum(-1, keepdims=True), RENORMALISE_FLOOR)
            ).astype(np.float32)


def corrects_prior(segmenter: Any) -> bool:
    """Whether a segmenter applies its run's prior correction.

    Args:
        segmenter: any Segmenter (each has `class_weights`, the weights in force).

    Returns:
        True when it, or for an ensemble one of its members, corrects.
    """
    return bool(segmenter.class_weights) or any(
        corrects_prior(m) for m in getattr(segmenter, "members", ()))


def postprocessed(segmentation: Segmentation, et_threshold: int = 0, min_component: int = 0,
                  largest_component: bool = False) -> Segmentation:
    """A segmentation with its labels post-processed (`hved_tf.inference.postprocess`).

    Args:
        segmentation: changed in place.
        et_threshold: of `postprocess`.
        min_component: of `postprocess`.
        largest_component: of `postprocess`.

    Returns:
        It, the network's labels kept as "labels_raw"; unchanged when every rule is off.
    """
    if et_threshold or min_component or largest_component:
        raw = segmentation.outputs["labels"]
        segmentation.outputs["labels_raw"] = raw
        segmentation.outputs["labels"] = postprocess(raw, et_threshold, min_component,
                                                     largest_component)
    return segmentation


class SegmenterBase:
    """What every Segmenter shares: `refuse(mask)` raises the user-facing reason why its
    `capabilities` cannot run the mask."""

    capabilities: Capabilities

    def refuse(self, mask: np.ndarray) -> None:
        """Refuses a modality mask the model cannot run.

        Args:
            mask: [4], 1 for each sequence present.

        Raises:
            ValueError: the reason, in the user's terms.
        """
        reason = self.capabilities.refuses(mask)
        if reason:
            raise ValueError(reason)


class OnePreparation(SegmenterBase):
    """What evaluate asks of every Segmenter: the sets of landmarks the subject must be
    prepared with (one here; an ensemble's members may need several) and a segmentation from
    one prepared subject per set."""

    landmarks: dict | None           # the histogram landmarks its inputs are prepared with

    @property
    def landmark_sets(self) -> list:
        """The sets of landmarks a subject is prepared with (one)."""
        return [self.landmarks]

    def segment_prepared(self, prepared: Any, mask: np.ndarray,
                         progress: Callable | None = None) -> Segmentation:
        """A prepared subject segmented (each Segmenter's own).

        Args:
            prepared: a `hved_tf.data.cache.PreparedSubject`.
            mask: [4], the sequences given.
            progress: `progress(done, total)` over the windows.

        Returns:
            The Segmentation.
        """
        raise NotImplementedError

    def segment_prepared_set(self, prepared: list, mask: np.ndarray,
                             progress: Callable | None = None) -> Segmentation:
        """A subject prepared once per set of landmarks, segmented.

        Args:
            prepared: one PreparedSubject per `landmark_sets` entry.
            mask: [4], the sequences given.
            progress: `progress(done, total)` over the windows.

        Returns:
            The Segmentation.
        """
        return self.segment_prepared(prepared[0], mask, progress)


class KerasSegmenter(OnePreparation):
    """A Segmenter over one of our Keras models (see the module docstring).

    `options` are the user's settings, `facts` what the model brings (its training patch,
    its prior correction: `model_facts(trained)`); `landmarks` ({modality: 13 values}) are
    needed by `segment_raw` only; `identity` is what reports record about the model;
    `synthesise`: True the four sequences, "missing" only when a modality is missing (what
    predict writes unless --synth_all), False never; `spacing`: the voxel size (mm) it was
    trained at (`hved_tf.inference.spacing`; (): unknown).
    """

    label_convention = None          # the caller's: outputs are training classes

    def __init__(self, model, options=InferenceOptions(), landmarks=None, identity=None,
                 synthesise=True, seed=0, spacing=(), facts=ModelFacts()):
        self.model = model
        self.spacing = tuple(spacing)          # the voxel size (mm) it was trained at
        self.options = options.validate()
        self.facts = facts.validate()
        self.class_weights = facts.weights_for(self.options)     # the correction in force
        self.landmarks = landmarks
        self.identity = identity or {}
        self.capabilities = model.capabilities
        self.precision = precision_to_use(options.precision)
        self.predictor = ModelPredictor(model_in_precision(model, self.precision),
                                        options.num_samples, synthesise, seed,
                                        single_draw=options.single_draw, tta_axes=options.mirror_axes)

    def segment_raw(self, image: np.ndarray, mask: np.ndarray,
                    progress: Callable | None = None,
                    flipped: tuple = (False, False, False)) -> Segmentation:
        """Raw intensities segmented: cropped, standardised, segmented.

        Args:
            image: raw RAS [X, Y, Z, 4] (missing modalities: anything).
            mask: [4], the sequences given.
            progress: `progress(done, total)` over the windows.
            flipped: the RAS axes the files store reversed (the crop box's rule, `crop_box`).

        Returns:
            The Segmentation, with the prepared image as "image".
        """
        self.refuse(mask)
        if self.landmarks is None:
            raise ValueError("The model has no histogram landmarks (no hist.txt in its run "
                             "folder): give --hist_file.")
        start = time.perf_counter()
        prepared, box = prepare_image(_present(image, mask), self.landmarks, flipped=flipped)
        preprocess_s = time.perf_counter() - start
        result = self.segment_prepared_image(prepared, mask, box, progress=progress)
        result.timings = {"preprocess_s": preprocess_s, **result.timings}
        result.outputs["image"] = prepared
        return result

    def segment_prepared(self, prepared: Any, mask: np.ndarray,
                         progress: Callable | None = None) -> Segmentation:
        """A prepared subject segmented by sliding windows.

        Args and Returns: as `OnePreparation.segment_prepared`.
        """
        return self.segment_prepared_image(prepared.image, mask, prepared.box, prepared.minimum,
                                           progress=progress)

    def segment_prepared_image(self, image: np.ndarray, mask: np.ndarray, box: CropBox,
                               pad_value: np.ndarray | None = None,
                               progress: Callable | None = None) -> Segmentation:
        """A prepared (cropped, standardised) image segmented by sliding windows.

        Args:
            image: [x, y, z, 4].
            mask: [4], the sequences given.
            box: where the image sits in the input's grid.
            pad_value: per channel, the value windows are padded with (None: its minimum).
            progress: `progress(done, total)` over the windows.

        Returns:
            The Segmentation (prior-corrected, post-processed as the options say).
        """
        self.refuse(mask)
        image = np.asarray(image, np.float32)
        if pad_value is None:
            pad_value = image.reshape(-1, image.shape[-1]).min(0)
        start = time.perf_counter()
        o = self.options
        multiple = self.capabilities.multiple
        window = tuple(int(w) for w in choose_window(image.shape[:3], o, multiple,
                                                     self.facts.patch).numpy())
        tiling = Tiling(o.border, o.overlap, o.blend, o.batch_size)
        out = sliding_window(self.predictor.for_mask(mask), image, window, tiling,
                             pad_value=pad_value, multiple=multiple, progress=progress)
        extra = {"variance": out["variance"][..., 0] if "variance" in out else None,
                 "recon": out.get("recon")}
        settings = {**dataclasses.asdict(o), "window_used": list(window),
                    "precision_used": self.precision, "training_patch": list(self.facts.patch),
                    "class_weights": list(self.class_weights)}
        probabilities = prior_corrected(out["probabilities"], self.class_weights)
        return postprocessed(finish(probabilities, extra, box,
                                    {"inference_s": time.perf_counter() - start},
                                    settings=settings),
                             o.et_threshold, o.min_component, o.largest_component)


def _present(image, mask):
    """The image with the channels of absent modalities zeroed (they may hold anything)."""
    image = np.asarray(image, np.float32)
    return image * (np.asarray(mask, np.float32).reshape(1, 1, 1, -1) > 0)
