"""Inference in bfloat16 (`--inference_precision bfloat16`; float32 by default).

The convolutions then run in bfloat16 with float32 weights and statistics (Keras's
`mixed_bfloat16` policy, as training's `--precision mixed_bfloat16`); the softmax, the averaging
of z samples and every output stay float32. It pays only where the hardware computes in
bfloat16: on an x86 CPU the `avx512_bf16` (or `amx_bf16`) instruction set, or a GPU. Elsewhere
TensorFlow would emulate it, slower than float32, so it is refused with a warning naming the CPU
flag and inference runs in float32. What it saves and what it changes (probabilities, Dice) is
measured by `python -m tools.benchmarks.speed predict --precision bfloat16` and recorded in
docs/benchmarks/performance.md. Exports stay float32.
"""
from __future__ import annotations

import logging
import pathlib
from typing import Any

import keras
import tensorflow as tf

from hved_tf.config.checks import choice
from hved_tf.config.vocabulary import INFERENCE_PRECISIONS

CPU_FLAGS = ("avx512_bf16", "amx_bf16")
log = logging.getLogger("hved_tf")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str] | None:
    """The instruction-set flags the CPU reports (Linux).

    Args:
        cpuinfo: the file to read.

    Returns:
        The flags, or None when they cannot be read.
    """
    try:
        text = pathlib.Path(cpuinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return None


def bf16_hardware(flags: set[str] | None = None, gpus: list | None = None) -> bool:
    """Whether bfloat16 runs natively: a GPU, or a CPU reporting one of CPU_FLAGS.

    Args:
        flags: the CPU's flags (None: `cpu_flags()`).
        gpus: the GPUs (None: TensorFlow's list).

    Returns:
        True when it does.
    """
    gpus = tf.config.list_physical_devices("GPU") if gpus is None else gpus
    if gpus:
        return True
    flags = cpu_flags() if flags is None else flags
    return bool(flags and any(f in flags for f in CPU_FLAGS))


def precision_to_use(asked: str, supported: bool | None = None) -> str:
    """The precision inference runs in.

    Args:
        asked: "float32" or "bfloat16" (--inference_precision).
        supported: whether the hardware runs bfloat16 (None: `bf16_hardware()`).

    Returns:
        `asked`, or float32 (with a warning naming the CPU flag) when bfloat16 is asked for on
        hardware without it.
    """
    choice("inference_precision", asked, INFERENCE_PRECISIONS)
    if asked == "bfloat16" and not (bf16_hardware() if supported is None else supported):
        log.warning("bfloat16 inference asked for, but this CPU does not report the %s "
                    "instruction set (/proc/cpuinfo flags): bfloat16 would be emulated, "
                    "slower than float32. Running in float32.", " or ".join(CPU_FLAGS))
        return "float32"
    return asked


def model_in_precision(model: Any, precision: str) -> Any:
    """A model to run in a precision.

    Args:
        model: a hved_tf Keras model.
        precision: "float32" or "bfloat16".

    Returns:
        `model` itself for float32; for bfloat16 a twin built under the mixed_bfloat16 policy
        holding the same (float32) weights.
    """
    if precision == "float32":
        return model
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        config = dict(model.get_config())
        config.pop("dtype", None)                # the model's own policy: the global one
        twin = type(model).from_config(config)
        twin.build()
    finally:
        keras.mixed_precision.set_global_policy(previous)
    twin.set_weights(model.get_weights())
    return twin
