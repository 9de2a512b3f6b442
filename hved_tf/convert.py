"""Loading the authors' NiftyNet (TF1) checkpoints into our Keras models.

`niftynet_name_map(model)` gives {original variable name: Keras variable}; it follows the
release's naming (docs/explanation/design.md, The networks):

    VAE/ConvEncoder/conv_0_<Mod>_leakyrelu/conv_/w                 encoder stem
    VAE/ConvEncoder/block_<l>_<Mod>/conv_<i>/w                     encoder block l, unit i
    VAE/ConvEncoder/block_<l>_<Mod>/in_<i>/InstanceNorm/{gamma,beta}
    VAE/ConvDecoderImg/block_<j>_<Head>/...                        decoder block j (deep first)
    VAE/ConvDecoderImg/final_conv_seg[_k]/conv_/w                  last 1x1x1 conv of each head

<Mod> is T1, T1c, T2 or Flair; U-HVED's heads are T1, T1c, T2, Flair and seg, whose final convs
NiftyNet uniquified in creation order as final_conv_seg, _1, _2, _3, _4. U-HeMIS has one head,
seg, with final_conv_seg.

`load_niftynet_checkpoint(model, prefix)` reads a TF1 checkpoint (tf.train.load_checkpoint reads
the V2 format the release ships), refuses with one error listing every missing, unexpected and
mis-shaped name, ignores optimiser state (Adam slots, beta powers, global step), then assigns.
"""
from __future__ import annotations

import re

import numpy as np
import tensorflow as tf


ORIGINAL_MODALITY_NAMES = ("T1", "T1c", "T2", "Flair")
UHVED_HEADS = ("T1", "T1c", "T2", "Flair", "seg")
_OPTIMIZER_PATTERNS = (r"/Adam(_\d+)?$", r"^ApplyGradients/", r"(^|/)beta[12]_power$",
                       r"(^|/)global_step$", r"/Momentum$", r"/RMSProp(_\d+)?$")


def _encoder_names(encoder, modality):
    names = {f"VAE/ConvEncoder/conv_0_{modality}_leakyrelu/conv_/w": encoder.stem.conv.kernel}
    for level, block in enumerate(encoder.blocks, start=1):
        prefix = f"VAE/ConvEncoder/block_{level}_{modality}"
        names.update(_block_names(prefix, block))
    return names


def _block_names(prefix, block):
    names = {}
    for i, unit in enumerate(block.units):
        names[f"{prefix}/conv_{i}/w"] = unit.conv.kernel
        names[f"{prefix}/in_{i}/InstanceNorm/gamma"] = unit.norm.gamma
        names[f"{prefix}/in_{i}/InstanceNorm/beta"] = unit.norm.beta
    return names


def _decoder_names(decoder, head, final_name):
    names = {}
    for j, block in enumerate(decoder.blocks, start=1):
        names.update(_block_names(f"VAE/ConvDecoderImg/block_{j}_{head}", block))
    names[f"VAE/ConvDecoderImg/{final_name}/conv_/w"] = decoder.final_conv.kernel
    return names


RELEASED = ("u_hved", "u_hemis")          # the models the release has checkpoints of


def niftynet_name_map(model):
    """{original NiftyNet variable name: Keras variable} for a built UHVED or UHeMIS."""
    if not model.built:
        model.build()
    if model.kind not in RELEASED:
        raise ValueError(
            f"The original release has checkpoints for U-HVED and U-HeMIS only; got "
            f"{type(model).__name__}.")
    names = {}
    for encoder, modality in zip(model.encoders, ORIGINAL_MODALITY_NAMES):
        names.update(_encoder_names(encoder, modality))
    if model.capabilities.synthesises:          # U-HVED: four image decoders, then seg
        decoders = list(model.image_decoders) + [model.seg_decoder]
        for k, (decoder, head) in enumerate(zip(decoders, UHVED_HEADS)):
            final = "final_conv_seg" if k == 0 else f"final_conv_seg_{k}"
            names.update(_decoder_names(decoder, head, final))
    else:
        names.update(_decoder_names(model.seg_decoder, "seg", "final_conv_seg"))
    return names


def is_optimizer_variable(name):
    return any(re.search(p, name) for p in _OPTIMIZER_PATTERNS)


def read_checkpoint(prefix):
    """{name: shape} of the model variables of a TF checkpoint (optimiser state left out)."""
    try:
        reader = tf.train.load_checkpoint(str(prefix))
    except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError) as err:
        raise ValueError(
            f"Cannot read a TensorFlow checkpoint at {prefix!r}: {err}. Give the prefix, e.g. "
            "'models/u_hved/models/model.ckpt-60000' (the path without .index/.data-*).") from None
    shapes = {name: tuple(shape) for name, shape in reader.get_variable_to_shape_map().items()
              if not is_optimizer_variable(name)}
    return reader, shapes


def check_compatibility(name_map, file_shapes):
    """Lists of (missing, unexpected, mis-shaped) names between a model and a checkpoint."""
    missing = sorted(set(name_map) - set(file_shapes))
    unexpected = sorted(set(file_shapes) - set(name_map))
    misshaped = sorted(
        f"{name}: checkpoint {list(file_shapes[name])}, model {list(var.shape)}"
        for name, var in name_map.items()
        if name in file_shapes and tuple(file_shapes[name]) != tuple(var.shape))
    return missing, unexpected, misshaped


def load_niftynet_checkpoint(model, checkpoint_prefix):
    """Assigns every variable of an original checkpoint to `model`; returns the number loaded."""
    name_map = niftynet_name_map(model)
    reader, shapes = read_checkpoint(checkpoint_prefix)
    missing, unexpected, misshaped = check_compatibility(name_map, shapes)
    if missing or unexpected or misshaped:
        lines = [f"The checkpoint {checkpoint_prefix!r} does not fit {type(model).__name__} "
                 f"(base_filters={getattr(model, 'base_filters', '?')}, "
                 f"levels={getattr(model, 'levels', '?')}):"]
        for title, items in (("missing from the checkpoint", missing),
                             ("unexpected in the checkpoint", unexpected),
                             ("shape mismatch", misshaped)):
            if items:
                lines.append(f"  {title} ({len(items)}):")
                lines.extend(f"    {item}" for item in items)
        lines.append("Is it a U-HVED checkpoint loaded into U-HeMIS or the reverse?")
        raise ValueError("\n".join(lines))
    for name, var in name_map.items():
        var.assign(np.asarray(reader.get_tensor(name), dtype=var.dtype))
    return len(name_map)
