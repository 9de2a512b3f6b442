"""Ensembles: several trained models run as one Segmenter, their probabilities averaged (the
release's protocol trains one model per split; nnU-Net users average their folds).

`EnsembleSegmenter(members, options)`: `members` are `TrainedModel`s (run folders or .keras
files, `hved_tf.inference.loading`). Each member segments the subject with its own landmarks,
its own prior correction (if its run has one) and the ensemble's inference options with
post-processing off; the ensemble averages the class
probabilities and the reconstructions (of the members that synthesise), takes the variance as
the mean of the members' variances plus the variance of their probabilities (the spread over
members counts, as over TTA flips), and post-processes the averaged labels once.

Refused before any work, in one line naming the members: an export (its settings and label
convention are frozen: give the run folders it came from), members with different numbers of
classes or training patches (the window inference falls back on), members that run on
different modality subsets.

Members may have different histogram landmarks (each split model learns its own):
`landmark_sets` lists the distinct ones, and `segment_prepared_set` takes one prepared subject
per set (evaluate prepares them); the crop is the same for all (it depends on the raw image
only). Synthesised sequences are averaged in each member's normalised units and scored against
the first member's preparation.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import numpy as np

from hved_tf.config import InferenceOptions
from hved_tf.inference.segmenter import (KerasSegmenter, SegmenterBase, finish, model_facts,
                                        postprocessed)
from hved_tf.models.contract import Capabilities

NO_POSTPROCESSING = dict(et_threshold=0, min_component=0, largest_component=False)


def _landmark_key(landmarks):
    if landmarks is None:
        return None
    return tuple((m, tuple(np.round(np.asarray(v, float), 6))) for m, v in
                 sorted(landmarks.items()))


def check_members(members: list) -> None:
    """Refuses an ensemble whose members cannot be averaged (see the module docstring).

    Args:
        members: TrainedModels.

    Raises:
        ValueError: naming what differs and between which members.
    """
    if len(members) < 2:
        raise ValueError("An ensemble needs at least two models.")
    where = [m.identity.get("source", "?") for m in members]
    for label, values in (
            ("numbers of classes", [int(m.model.num_classes) for m in members]),
            ("training patches (the fallback window)",
             ["x".join(map(str, m.window)) for m in members]),
            ("modality subsets", [m.model.capabilities.subset or "any" for m in members]),
            ("voxel sizes (mm)", ["x".join(f"{s:g}" for s in m.spacing) or "unknown"
                                  for m in members])):
        if len(set(values)) > 1:
            pairs = ", ".join(f"{w}: {v}" for w, v in zip(where, values))
            raise ValueError(f"The models of the ensemble have different {label} ({pairs}); "
                             "an ensemble averages models of one kind: leave the odd one out.")


class EnsembleSegmenter(SegmenterBase):
    """A Segmenter averaging the probabilities of several trained models."""
    label_convention = None          # the caller's: outputs are training classes

    def __init__(self, members, options=InferenceOptions(), name="ensemble", synthesise=True):
        check_members(members)
        self.options = options.validate()
        member_options = dataclasses.replace(options, **NO_POSTPROCESSING)
        self.members = [KerasSegmenter(m.model, member_options, m.landmarks, m.identity,
                                       synthesise=synthesise, spacing=m.spacing,
                                       facts=model_facts(m))
                        for m in members]
        self.class_weights = ()          # each member corrects its own
        self.spacing = tuple(members[0].spacing)
        first = members[0].model.capabilities
        self.capabilities = Capabilities(
            subset=first.subset,
            synthesises=any(m.model.capabilities.synthesises for m in members),
            latent_samples=any(m.model.capabilities.latent_samples for m in members),
            multiple=max(m.model.capabilities.multiple for m in members))
        keys = [_landmark_key(m.landmarks) for m in self.members]
        distinct = list(dict.fromkeys(keys))
        self._set_of_member = [distinct.index(k) for k in keys]
        self.landmark_sets = [self.members[keys.index(k)].landmarks for k in distinct]
        self.landmarks = self.landmark_sets[0]
        self.identity = {"model": name, "source": name, "ensemble": [m.identity for m in members],
                         "landmarks": [m.identity.get("landmarks") for m in members]}

    def _combine(self, results, extra_outputs=()):
        start = time.perf_counter()
        probs = np.mean([r.outputs["probabilities"] for r in results], axis=0)
        within = np.mean([r.outputs["variance"] if "variance" in r else
                          np.zeros(probs.shape[:-1], np.float32) for r in results], axis=0)
        between = np.sum(np.mean([np.square(r.outputs["probabilities"] - probs)
                                  for r in results], axis=0), axis=-1)
        recons = [r.outputs["recon"] for r in results if "recon" in r]
        extra = {"variance": (within + between).astype(np.float32),
                 "recon": np.mean(recons, axis=0) if recons else None}
        timings = {"inference_s": sum(r.timings.get("inference_s", 0.0) for r in results)
                   + time.perf_counter() - start}
        settings = {**dataclasses.asdict(self.options), "members": len(results),
                    "window_used": results[0].settings.get("window_used"),
                    "precision_used": results[0].settings.get("precision_used")}
        out = finish(probs.astype(np.float32), extra, results[0].box, timings, settings=settings)
        for name in extra_outputs:
            out.outputs[name] = results[0].outputs[name]
        o = self.options
        return postprocessed(out, o.et_threshold, o.min_component, o.largest_component)

    def segment_raw(self, image: np.ndarray, mask: np.ndarray,
                    progress: Callable | None = None,
                    flipped: tuple = (False, False, False)) -> Any:
        """Raw intensities segmented by each member, the probabilities averaged.

        Args and Returns: as `KerasSegmenter.segment_raw`.
        """
        self.refuse(mask)
        results = [m.segment_raw(image, mask, progress, flipped) for m in self.members]
        out = self._combine(results, extra_outputs=("image",))
        out.timings = {"preprocess_s": sum(r.timings["preprocess_s"] for r in results),
                       **out.timings}
        return out

    def segment_prepared_set(self, prepared: list, mask: np.ndarray,
                             progress: Callable | None = None) -> Any:
        """A subject prepared once per set of landmarks, segmented by each member.

        Args:
            prepared: one PreparedSubject per entry of `landmark_sets`.
            mask: [4], the sequences given.
            progress: `progress(done, total)` over the windows.

        Returns:
            The Segmentation, probabilities averaged.
        """
        self.refuse(mask)
        if len(prepared) != len(self.landmark_sets):
            raise ValueError(f"The ensemble needs {len(self.landmark_sets)} preparations of the "
                             f"subject (one per set of landmarks), got {len(prepared)}.")
        return self._combine([m.segment_prepared(prepared[k], mask, progress)
                              for m, k in zip(self.members, self._set_of_member)])

    def segment_prepared(self, prepared: Any, mask: np.ndarray,
                         progress: Callable | None = None) -> Any:
        """A prepared subject segmented by each member (their landmarks all the same), the
        probabilities averaged.

        Args and Returns: as `OnePreparation.segment_prepared`.
        """
        if len(self.landmark_sets) > 1:
            raise ValueError("The members of this ensemble have different landmarks: each "
                             "needs its own preparation of the subject (segment_prepared_set).")
        return self.segment_prepared_set([prepared], mask, progress)
