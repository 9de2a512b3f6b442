"""SavedModel export for TF Serving: `python -m hved_tf.export --model M --export_dir D`.

The export holds the network, its label convention and the inference settings as constants, and
these signatures (all float32 unless said; every spatial size dynamic):

- `serving_default`: `image` [B, X, Y, Z, 4] (preprocessed intensities, the channels T1, T1c, T2,
  FLAIR; a missing one may be anything, it is masked), `mask` [B, 4] (1 = present) ->
  `seg_probabilities` [B, X, Y, Z, C], `seg_labels` int32 [B, X, Y, Z] (label values of the
  export's convention), `uncertainty` [B, X, Y, Z] (entropy, nats), `variance` [B, X, Y, Z]
  (across the z samples), `recon` [B, X, Y, Z, 4] (U-HVED; zeros for the other models). The
  input is one window: sizes that are not a multiple of the network's pooling are padded at
  the end with each channel's minimum and the outputs cropped back. The export's default
  number of z samples is used;
- `serving_samples`: the same with `num_samples` int32 [] (TF Serving needs every input of a
  signature in each request, so the sample count gets a signature of its own rather than an
  optional input);
- `segment_volume`: `image` [X, Y, Z, 4] (a whole preprocessed volume, any size), `mask` [4] ->
  the same outputs without the batch axis, by the sliding windows of `hved_tf.inference.windows`
  computed in the graph (same window choice, overlap, border and blending), so a client sends
  one request per patient and gets what `hved_tf.predict` computes;
- `segment_raw`: `image` [X, Y, Z, 4] raw intensities in RAS voxel order (e.g. nibabel's
  `as_closest_canonical`: the network was trained on RAS volumes and is not flip-invariant),
  `mask` [4], `spacing` [3] (the voxel sizes in mm, in the same RAS order) -> the same outputs
  on that whole grid: an input whose voxel sizes differ from the model's by more than 1% is
  resampled to the model's (cubic, its zero background kept: `hved_tf.serving.spacing`), then
  the release's crop, the padding, 'mean_plus' foreground, Nyúl standardisation with the
  landmarks stored as constants, whitening (`hved_tf.serving.graph`, every step exact, hole
  filling included), `segment_volume`, the crop undone, and the class probabilities, variance
  and synthesised sequences resampled linearly back to the input's grid, where the labels are
  their argmax (as `hved_tf.predict` does). A client needs no preprocessing code.

Export writes into a temporary folder beside `<export_dir>/<version>`, loads it back with
`tf.saved_model.load`, calls every signature on a small random input, and only then renames it
to `<export_dir>/<version>` (the version: `--version`, else one more than the highest there).
The graph holds no Python function ops (PyFunc/EagerPyFunc); tests scan for them.
"""
from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import tensorflow as tf

from hved_tf.config import InferenceOptions, ModelFacts
from hved_tf.inference.exported import EXPORT_METADATA
from hved_tf.inference.segmenter import RENORMALISE_FLOOR, model_facts
from hved_tf.inference.postprocess import ENHANCING, NECROTIC
from hved_tf.inference.tta import with_flips
from hved_tf.inference.windows import (axis_starts, blend_weights, choose_window, entropy,
                                       fit_window)
from hved_tf.io.atomic import (OutputError, atomic_directory, check_writable, remove_partials,
                               write_json)
from hved_tf.modalities import (LABEL_CONVENTIONS, MODALITIES, NUM_MODALITIES, parse_subset,
                                subset_mask)
from hved_tf.serving import graph, spacing as resampling

SIGNATURES = ("serving_default", "serving_samples", "segment_volume", "segment_raw")


def _pad_with(x, paddings, value):
    """tf.pad with a per-channel value (broadcast), leaving the inside bit-exact."""
    inside = tf.pad(tf.ones_like(x, tf.bool), paddings, constant_values=False)
    return tf.where(inside, tf.pad(x, paddings), value)



def prior_corrected_tf(probs, weights):
    """`hved_tf.inference.segmenter.prior_corrected` in TensorFlow: probs [..., C] times the
    class weights, renormalised; unchanged for no weights."""
    if not weights:
        return probs
    probs = probs * tf.constant(weights, probs.dtype)
    return probs / tf.maximum(tf.reduce_sum(probs, -1, keepdims=True), RENORMALISE_FLOOR)


def etpp_tf(classes, et_threshold):
    """`hved_tf.inference.postprocess`'s ETpp rule in TensorFlow on classes [..., X, Y, Z]:
    fewer than `et_threshold` enhancing voxels in a volume are relabelled necrotic."""
    if not et_threshold:
        return classes
    enhancing = classes == ENHANCING
    count = tf.reduce_sum(tf.cast(enhancing, tf.int32), axis=[-3, -2, -1], keepdims=True)
    small = (count > 0) & (count < et_threshold)
    return tf.where(enhancing & small, NECROTIC, classes)

class ServingModule(tf.Module):
    """The exported functions over one trained model (see the module docstring)."""

    def __init__(self, model, label_convention="brats2018", options=InferenceOptions(),
                 seed=0, landmarks=None, spacing=(1.0, 1.0, 1.0), facts=ModelFacts()):
        super().__init__()
        if not landmarks:
            raise ValueError("The model has no histogram landmarks (no hist.txt in its run "
                             "folder), which segment_raw needs: give --hist_file.")
        missing = [m for m in MODALITIES if m not in landmarks]
        self.landmarks = tf.constant(np.stack([
            np.asarray(landmarks[m], np.float64) if m in landmarks else np.full(13, np.nan)
            for m in MODALITIES]), tf.float64)
        self.missing_landmarks = tf.constant([m in missing for m in MODALITIES])
        self.model = model
        # Every weight tracked here, as Keras' own exporter does: a layer kept in a nested
        # Python list (HeMIS' back-ends) is otherwise invisible to TensorFlow's tracking.
        self.model_variables = list(model.variables)
        self.capabilities = model.capabilities
        self.multiple = self.capabilities.multiple
        self.label_values = tf.constant(LABEL_CONVENTIONS[label_convention], tf.int32)
        self.options = options
        self.facts = facts.validate()
        self.class_weights = facts.weights_for(options)    # the prior correction frozen in it
        self.seed = int(seed)
        self.spacing = tf.constant([float(v) for v in spacing], tf.float64)
        image = tf.TensorSpec([None, None, None, None, NUM_MODALITIES], tf.float32, "image")
        mask = tf.TensorSpec([None, NUM_MODALITIES], tf.float32, "mask")
        self.serving_default = tf.function(
            lambda image, mask: self._window(image, mask, options.num_samples),
            input_signature=[image, mask])
        self.serving_samples = tf.function(
            lambda image, mask, num_samples: self._window(image, mask, num_samples),
            input_signature=[image, mask, tf.TensorSpec([], tf.int32, "num_samples")])
        volume = [tf.TensorSpec([None, None, None, NUM_MODALITIES], tf.float32, "image"),
                  tf.TensorSpec([NUM_MODALITIES], tf.float32, "mask")]
        self.segment_volume = tf.function(self._volume, input_signature=volume)
        self.segment_raw = tf.function(
            self._raw, input_signature=volume + [tf.TensorSpec([3], tf.float32, "spacing")])

    # ------------------------------------------------------------------ pieces
    def _infer(self, image, mask, num_samples):
        def once(x):
            out = self.model.infer({"image": x, "mask": mask}, num_samples=num_samples,
                                   seed=self.seed)
            probs = out["seg_probabilities"]
            return (probs, out.get("seg_variance", tf.zeros_like(probs[..., :1])),
                    out.get("recon", tf.zeros_like(x)))
        return with_flips(once, image, self.options.mirror_axes)     # the export's frozen TTA

    def _outputs(self, probs, variance, recon):
        probs = prior_corrected_tf(probs, self.class_weights)   # frozen in the export
        return self._labelled(probs, variance[..., 0], recon)

    def _labelled(self, probs, variance, recon):
        """The outputs from (prior-corrected) probabilities: labels, entropy."""
        classes = etpp_tf(tf.argmax(probs, axis=-1, output_type=tf.int32),
                          self.options.et_threshold)     # per volume (per window in a batch)
        labels = tf.gather(self.label_values, classes)
        return {"seg_probabilities": probs, "seg_labels": labels,
                "uncertainty": entropy(probs), "variance": variance, "recon": recon}

    def _window(self, image, mask, num_samples):
        shape = tf.shape(image)
        size = shape[1:4]
        padded = (size + self.multiple - 1) // self.multiple * self.multiple
        minimum = tf.reduce_min(image, axis=[1, 2, 3], keepdims=True)
        pads = tf.stack([tf.zeros([3], tf.int32), padded - size], axis=1)
        full = _pad_with(image, tf.concat([[[0, 0]], pads, [[0, 0]]], 0), minimum)
        probs, variance, recon = self._infer(full, mask, num_samples)
        crop = (lambda t: t[:, :size[0], :size[1], :size[2]])
        return self._outputs(crop(probs), crop(variance), crop(recon))

    def _plan(self, size):
        """(window [3], interior [3], starts per axis): the planning of hved_tf.inference."""
        o, m = self.options, self.multiple
        window = fit_window(size, choose_window(size, o, m, self.facts.patch), o.border, m)
        interior = window - 2 * o.border
        starts = [axis_starts(size[i], interior[i], o.overlap) for i in range(3)]
        return window, interior, starts

    def _volume(self, image, mask):
        o = self.options
        b = o.border
        size = tf.shape(image)[:3]
        window, interior, starts = self._plan(size)
        counts = tf.stack([tf.shape(s)[0] for s in starts])
        pad_after = tf.maximum(0, tf.stack([s[-1] for s in starts]) + interior - size)
        padded_size = size + 2 * b + pad_after
        minimum = tf.reduce_min(tf.reshape(image, [-1, NUM_MODALITIES]), axis=0)
        pads = tf.stack([tf.fill([3], b), b + pad_after], axis=1)
        volume = _pad_with(image, tf.concat([pads, [[0, 0]]], 0), minimum)
        weights = blend_weights(interior, o.blend)
        batch_mask = mask[None]
        classes = int(self.model.num_classes)

        def body(k, probs_sum, var_sum, recon_sum, total):
            idx = tf.unravel_index(k, counts)
            corner = tf.stack([starts[i][idx[i]] for i in range(3)])
            part = tf.slice(volume, tf.concat([corner, [0]], 0),
                            tf.concat([window, [NUM_MODALITIES]], 0))
            part = tf.ensure_shape(part, [None, None, None, NUM_MODALITIES])
            probs, variance, recon = self._infer(part[None], batch_mask, o.num_samples)
            inner = tf.concat([[0], tf.fill([3], b), [0]], 0)
            extent = tf.concat([[1], interior, [-1]], 0)
            place = tf.stack([corner + b, padded_size - corner - b - interior], axis=1)
            place = tf.concat([place, [[0, 0]]], 0)

            def add(acc, t):
                t = tf.slice(t, inner, extent)[0] * weights[..., None]
                return tf.ensure_shape(acc + tf.pad(t, place), acc.shape)

            return (k + 1, add(probs_sum, probs), add(var_sum, variance),
                    add(recon_sum, recon), total + tf.pad(weights, place[:3]))

        zeros = lambda c: tf.zeros(tf.concat([padded_size, [c]], 0), tf.float32)  # noqa: E731
        _, probs, variance, recon, total = tf.while_loop(
            lambda k, *_: k < tf.reduce_prod(counts), body,
            (tf.constant(0), zeros(classes), zeros(1), zeros(NUM_MODALITIES),
             tf.zeros(padded_size, tf.float32)))
        inside = (lambda t: t[b:b + size[0], b:b + size[1], b:b + size[2]])
        total = inside(total)[..., None]
        return self._outputs(inside(probs) / total, inside(variance) / total,
                             inside(recon) / total)

    def _raw(self, image, mask, spacing):
        """Raw RAS intensities at voxel sizes `spacing` in: resampled to the model's voxel size
        when they differ, `_on_model_grid`, and the outputs brought back to the input's grid."""
        tf.debugging.assert_equal(
            tf.reduce_all(tf.math.is_finite(spacing) & (spacing > 0)), True,
            message="segment_raw: spacing must be three finite positive voxel sizes (mm).")
        size = tf.shape(image)[:3]
        out_shape, same = resampling.plan(size, spacing, self.spacing)
        image = image * tf.cast(mask > 0, tf.float32)
        image = tf.cond(same, lambda: image,
                        lambda: resampling.to_model_image(image, out_shape))
        out = self._on_model_grid(image, mask)
        return tf.cond(same, lambda: out, lambda: self._on_input_grid(out, size))

    def _on_input_grid(self, out, size):
        """The outputs on the model's grid resampled linearly to the input's `size`; the labels
        and the entropy from the resampled probabilities."""
        back = (lambda t: resampling.to_input_linear(t, size))       # noqa: E731
        return self._labelled(back(out["seg_probabilities"]),
                              back(out["variance"][..., None])[..., 0], back(out["recon"]))

    def _on_model_grid(self, image, mask):
        """Raw RAS intensities in: the crop, the intensity chain (hved_tf.serving.graph),
        segment_volume, and the crop undone."""
        present = mask > 0
        tf.debugging.assert_equal(
            tf.reduce_any(present & self.missing_landmarks), False,
            message="segment_raw: a present modality has no landmarks in this export.")
        image = image * tf.cast(present, tf.float32)
        lo, hi = graph.crop_box(image)
        cropped = tf.slice(image, tf.concat([lo, [0]], 0), tf.concat([hi - lo, [-1]], 0))
        cropped = tf.ensure_shape(cropped, [None, None, None, NUM_MODALITIES])
        normalised = graph.normalise_intensities(cropped, present, self.landmarks)
        out = self._volume(normalised, mask)
        pads = tf.stack([lo, tf.shape(image)[:3] - hi], axis=1)
        channel = tf.concat([pads, [[0, 0]]], 0)
        probs = out["seg_probabilities"]
        background = tf.one_hot(0, tf.shape(probs)[-1])
        recon_min = tf.reduce_min(tf.reshape(out["recon"], [-1, NUM_MODALITIES]), axis=0)
        return {"seg_probabilities": _pad_with(probs, channel, background),
                "seg_labels": tf.pad(out["seg_labels"], pads),
                "uncertainty": tf.pad(out["uncertainty"], pads),
                "variance": tf.pad(out["variance"], pads),
                "recon": _pad_with(out["recon"], channel, recon_min)}


def check_signatures(path, multiple, mask=(1.0, 0.0, 1.0, 1.0), spacing=(1.0, 1.0, 1.0)):
    """Loads an export and calls each signature on a small random input with `mask` (the
    modalities present), `segment_raw` at the model's voxel size `spacing` and at another;
    raises on failure."""
    loaded = tf.saved_model.load(str(path))
    size = max(2 * multiple + 3, 11)       # odd, and at least the models' minimum of 8
    rng = np.random.default_rng(0)
    image = tf.constant(rng.normal(size=(1, size, size, size, NUM_MODALITIES)), tf.float32)
    mask = tf.constant([mask], tf.float32)
    missing = [s for s in SIGNATURES if s not in loaded.signatures]
    if missing:
        raise RuntimeError(f"The export lacks the signature(s) {missing}.")
    outs = [loaded.signatures["serving_default"](image=image, mask=mask),
            loaded.signatures["serving_samples"](image=image, mask=mask,
                                                 num_samples=tf.constant(2)),
            loaded.signatures["segment_volume"](image=image[0], mask=mask[0]),
            loaded.signatures["segment_raw"](image=tf.abs(image[0]) * 100.0, mask=mask[0],
                                             spacing=tf.constant(spacing, tf.float32))]
    other = tf.constant(spacing, tf.float32) * tf.constant([1.0, 1.0, 1.5])
    resampled = loaded.signatures["segment_raw"](image=tf.abs(image[0]) * 100.0, mask=mask[0],
                                                 spacing=other)
    if tuple(resampled["seg_labels"].shape) != (size,) * 3:
        raise RuntimeError("Signature segment_raw did not bring its outputs back to the input's "
                           f"grid: {tuple(resampled['seg_labels'].shape)}.")
    for name, out in zip(SIGNATURES + ("segment_raw",), outs + [resampled]):
        for key, value in out.items():
            if not bool(tf.reduce_all(tf.math.is_finite(tf.cast(value, tf.float32)))):
                raise RuntimeError(f"Signature {name} gave non-finite values in {key}.")
    return loaded


GRAPH_BYTES = 8 << 20       # the signatures' graphs, with room to spare (u_hved: about 4 MB)


def export_bytes(model):
    """Roughly the bytes an export of `model` takes: its variables and the graph."""
    return int(sum(np.prod(v.shape) * np.dtype(v.dtype).itemsize
                   for v in model.variables)) + GRAPH_BYTES


def next_version(export_dir):
    existing = [int(p.name) for p in pathlib.Path(export_dir).glob("*") if p.name.isdigit()]
    return max(existing, default=0) + 1


def export_target(export_dir, version=None):
    """`<export_dir>/<version>` (the next free version when None), refused when it cannot be
    one: checked before the model is loaded. Removes what killed exports left there."""
    export_dir = pathlib.Path(export_dir)
    if export_dir.exists() and not export_dir.is_dir():
        raise OutputError(f"--export_dir {export_dir} is a file; give a folder.")
    remove_partials(export_dir)
    if version is not None and (isinstance(version, bool) or int(version) < 1):
        raise ValueError(f"--version must be a positive integer, got {version}.")
    target = export_dir / str(next_version(export_dir) if version is None else int(version))
    if target.exists():
        raise ValueError(f"{target} exists already: TF Serving versions are immutable; give "
                         "another --version or leave it out.")
    return target


def export_model(trained, config, seed=0):
    """Writes `<config.export_dir>/<config.version>` (see the module docstring) of the loaded
    model `trained` with the frozen inference settings `config.inference` (an ExportConfig;
    `config.model` is not read: `trained` is the model); returns its path."""
    options, label_convention = config.inference, config.label_convention
    if options.min_component or options.largest_component:
        raise ValueError("An export post-processes with the enhancing-tumour rule only "
                         "(--et_threshold); connected components (--min_component, "
                         "--largest_component) run in predict and evaluate.")
    if options.blend == "overwrite" or options.single_draw:
        raise ValueError("An export blends overlapping windows (--blend constant or gaussian) "
                         "and averages z samples or decodes the posterior mean; the release's "
                         "protocol (overwrite, one random draw) runs in predict and evaluate "
                         "(--protocol=original).")
    target = export_target(config.export_dir, config.version)
    check_writable(target.parent, export_bytes(trained.model))
    options, facts = options.validate(), model_facts(trained)
    spacing = tuple(trained.spacing or (1.0, 1.0, 1.0))
    module = ServingModule(trained.model, label_convention, options, seed,
                           landmarks=trained.landmarks, spacing=spacing, facts=facts)
    capabilities = trained.model.capabilities
    with atomic_directory(target) as tmp:
        # Who made the export and how it segments, for `hved_tf.predict --model <export>` and
        # for people (TF Serving ignores assets it does not use). Written beside the export,
        # copied into its assets/ by the save, then removed.
        meta = write_json(tmp / EXPORT_METADATA, {
            "identity": trained.identity, "label_convention": label_convention,
            "inference": {**dataclasses.asdict(options), "seed": int(seed)},
            "training_patch": list(facts.patch),
            "class_weights": list(module.class_weights),
            "subset": capabilities.subset,
            "spacing_mm": list(spacing),
            "capabilities": dataclasses.asdict(capabilities),
            "signatures": list(SIGNATURES)})
        module.metadata = tf.saved_model.Asset(str(meta))
        try:
            tf.saved_model.save(module, str(tmp), signatures={
                "serving_default": module.serving_default,
                "serving_samples": module.serving_samples,
                "segment_volume": module.segment_volume,
                "segment_raw": module.segment_raw})
        except (tf.errors.ResourceExhaustedError, tf.errors.PermissionDeniedError,
                tf.errors.FailedPreconditionError, tf.errors.UnavailableError) as err:
            # TensorFlow's file system errors, not OSError: a full disk, a read-only one.
            reason = err.message.split(";")[-1].strip() or type(err).__name__
            raise OutputError(f"Cannot write {target}: {reason}.") from None
        meta.unlink()
        check_signatures(tmp, module.multiple,
                         tuple(subset_mask(parse_subset(capabilities.subset)))
                         if capabilities.subset else (1.0, 0.0, 1.0, 1.0), spacing)
    return target
