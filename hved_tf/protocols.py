"""Inference protocols, and inference settings said in words.

`protocol_options(protocol, options)`: the InferenceOptions of a protocol ("default": the
flags' own; "original": the release's evaluation). `protocol_weights(protocol, weights)`: which
weights of a run folder it uses. `describe_inference(options)`: the settings in one phrase, for
reports and logs (test_results.json, evaluate's summary.json and first line).
"""
from __future__ import annotations

import dataclasses

from hved_tf.config import PROTOCOLS, WEIGHTS, InferenceOptions, choice


def protocol_options(protocol, options=None):
    """The InferenceOptions of a protocol: "default" keeps `options` (the flags'); "original"
    is the release's evaluation: 128^3 windows with a 10-voxel border cut on the 10-padded
    volume (`sliding_window` pads by the border), later windows overwriting earlier ones, one
    random draw of the latents with a fixed seed."""
    choice("protocol", protocol, PROTOCOLS)
    options = options or InferenceOptions()
    if protocol == "original":
        options = dataclasses.replace(options, window=(128, 128, 128), border=10, overlap=0.0,
                                      blend="overwrite", num_samples=1, single_draw=True)
    return options.validate()


def protocol_weights(protocol, weights=""):
    """"best" or "final": as asked, else the protocol's (the original: the final weights)."""
    if weights:
        choice("weights", weights, WEIGHTS)
        return weights
    return "final" if protocol == "original" else "best"


def describe_inference(options):
    """The settings of an InferenceOptions in words (for reports and logs)."""
    window = ("whole volume (else " + "x".join(map(str, options.fallback_window)) + " windows)"
              if options.window is None else "x".join(map(str, options.window)) + " windows")
    z = ("one random draw of z" if options.num_samples == 1 and options.single_draw else
         "the posterior mean of z" if options.num_samples == 1 else
         f"{options.num_samples} z samples averaged")
    border = f", border {options.border}" if options.border else ""
    tta = f", mirror TTA over axes {','.join(map(str, options.tta_axes))}" \
        if options.tta_axes else ""
    post = []
    if options.et_threshold:
        post.append(f"ET under {options.et_threshold} voxels relabelled necrotic")
    if options.min_component:
        post.append(f"components under {options.min_component} voxels removed")
    if options.largest_component:
        post.append("the largest component only")
    return (f"{window}, overlap {options.overlap:g}{border}, {options.blend} blending, {z}{tta}"
            + (f"; post-processing: {', '.join(post)}" if post else ""))
