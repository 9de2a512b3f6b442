"""Protocols: how a model is run and scored so that its numbers sit beside published ones, and
inference settings said in words.

    paper     this repository's Table 1: the inference flags (whole volume, 10 z samples), no
              post-processing, voxel Dice (both empty: 1) and HD95 (both empty: 0, one empty:
              the grid's diagonal, 373.13 mm on BraTS' grid); table: Dice
    original  the release's evaluation (128^3 windows, border 10, later windows overwrite
              earlier ones, one random z draw, the final weights); scored as paper
    brats     the BraTS challenges since 2023: scored as paper, but one empty region scores
              HD95 374 as in the lesion-wise code; table: lesion-wise Dice (brats2023 rules)
              beside voxel Dice
    brats2025 the BraTS 2025/2026 challenges: scored as brats, but the lesion-wise scores are
              the official package's (panoptica: one-to-one matched instances, detection F1,
              PQ; hved_tf.evaluation.panoptic); table: lesion-wise Dice, detection F1, Dice
    rfnet     RFNet / mmFormer: ETpp (fewer than 500 enhancing voxels relabelled necrotic), Dice
              with an epsilon (both empty: 1, equal to ours to 1e-8 otherwise); table: raw and
              post-processed Dice side by side

`protocol_options(protocol, options)`: the InferenceOptions of a protocol (the flags' own,
the release's for "original", ETpp added for "rfnet"). `protocol_weights(protocol, weights)`:
which weights of a run folder it uses. `protocol_scoring(protocol)`: how evaluate scores and
tabulates. `describe_inference(options)`: the settings in one phrase, for reports and logs
(test_results.json, evaluate's summary.json and first line).
"""
from __future__ import annotations

import dataclasses

from hved_tf.config import OLD_PROTOCOL_NAMES, PROTOCOLS, WEIGHTS, InferenceOptions, choice

RFNET_ET_THRESHOLD = 500       # voxels (RFNet's post-processing of the enhancing tumour)
LESION_HD95_PENALTY = 374.0    # mm, BraTS 2023/2024's lesion-wise code


@dataclasses.dataclass(frozen=True)
class Scoring:
    """How evaluate scores under a protocol: the lesion-wise preset (when the flag does not
    choose), the HD95 of one empty region (None: the grid's diagonal), the table's columns."""
    lesion_protocol: str = "brats2023"
    hd95_penalty: float | None = None
    table_metrics: tuple = ("dice",)


SCORING = {"paper": Scoring(), "original": Scoring(),
           "brats": Scoring(hd95_penalty=LESION_HD95_PENALTY,
                            table_metrics=("lesion_dice", "dice")),
           "brats2025": Scoring(lesion_protocol="brats2025", hd95_penalty=LESION_HD95_PENALTY,
                                table_metrics=("lesion_dice", "detection_f1", "dice")),
           "rfnet": Scoring(table_metrics=("dice", "dice_pp"))}


def protocol_name(protocol):
    """The protocol's name, an old one ("default": "paper") translated, or a clear refusal."""
    protocol = OLD_PROTOCOL_NAMES.get(protocol, protocol)
    choice("protocol", protocol, PROTOCOLS)
    return protocol


def protocol_scoring(protocol):
    return SCORING[protocol_name(protocol)]


def protocol_options(protocol, options=None):
    """The InferenceOptions of a protocol: "paper", "brats" and "brats2025" keep `options`
    (the flags'); "original" is the release's evaluation: 128^3 windows with a 10-voxel border
    cut on the 10-padded volume (`sliding_window` pads by the border), later windows
    overwriting earlier ones, one random draw of the latents with a fixed seed, no prior
    correction; "rfnet" adds ETpp (500 voxels, unless --et_threshold says otherwise)."""
    protocol = protocol_name(protocol)
    options = options or InferenceOptions()
    if protocol == "rfnet" and not options.et_threshold:
        options = dataclasses.replace(options, et_threshold=RFNET_ET_THRESHOLD)
    if protocol == "original":
        options = dataclasses.replace(options, window=(128, 128, 128), border=10, overlap=0.0,
                                      blend="overwrite", num_samples=1, single_draw=True,
                                      prior_correction=False)
    return options.validate()


def protocol_weights(protocol, weights=""):
    """"best" or "final": as asked, else the protocol's (the original: the final weights)."""
    if weights:
        choice("weights", weights, WEIGHTS)
        return weights
    return "final" if protocol_name(protocol) == "original" else "best"


def protocol_settings(options, protocol):
    """(InferenceOptions, "best" | "final") of a command's inference settings and its
    `ProtocolChoice` (hved_tf.config.commands)."""
    return (protocol_options(protocol.name, options),
            protocol_weights(protocol.name, protocol.weights))


def describe_inference(options, facts=None):
    """The settings of an InferenceOptions in words (for reports and logs), with what one
    model brings (`facts`, a ModelFacts: its training patch, its prior correction) when given."""
    patch = "x".join(map(str, facts.patch)) if facts else "training-patch"
    window = (f"whole volume (else {patch} windows)" if options.window is None
              else "x".join(map(str, options.window)) + " windows")
    weights = facts.weights_for(options) if facts else ()
    z = ("one random draw of z" if options.num_samples == 1 and options.single_draw else
         "the posterior mean of z" if options.num_samples == 1 else
         f"{options.num_samples} z samples averaged")
    border = f", border {options.border}" if options.border else ""
    tta = f", mirror TTA over axes {','.join(map(str, options.mirror_axes))}" \
        if options.mirror_axes else ""
    prior = (", the training windows' class prior corrected ("
             + ", ".join(f"{w:.3g}" for w in weights) + ")" if weights else "")
    post = []
    if options.et_threshold:
        post.append(f"ET under {options.et_threshold} voxels relabelled necrotic")
    if options.min_component:
        post.append(f"components under {options.min_component} voxels removed")
    if options.largest_component:
        post.append("the largest component only")
    return (f"{window}, overlap {options.overlap:g}{border}, {options.blend} blending, {z}{tta}"
            f"{prior}"
            + (f"; post-processing: {', '.join(post)}" if post else ""))
