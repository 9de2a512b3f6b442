"""Sliding windows: where the windows go (planned once, in TensorFlow ops), and stitching.

Planning (`choose_window`, `fit_window`, `axis_starts`, `blend_weights`) is written once in
TensorFlow ops on small integer tensors, so that the same functions plan eagerly for
`sliding_window` here and inside the graph of an export's `segment_volume`
(`hved_tf.serving.export`), where the volume's size is only known at run time: one
implementation serves both, rather than a NumPy planner here and a TensorFlow twin there.

`sliding_window(predict, volume, window, ...)` maps a batch of windows [B, wx, wy, wz, C]
(NumPy) through `predict` to a dict of arrays [B, wx, wy, wz, K_name], and returns, per name,
the volume [X, Y, Z, K_name] stitched from the windows. Each window keeps only its interior
(`border` voxels cut from each side: the original's way of hiding the zero-padding effects at a
window's edge); interiors are laid out with a stride of `(1 - overlap)` times their size, the
last one slid back to end at the volume's end; where interiors overlap the outputs are averaged,
with equal weights or a Gaussian centred on each interior (`blend="gaussian"`, sigma 1/8 of the
interior, nnU-Net's choice), or the later window (in the order x, then y, then z of the starts)
overwrites the earlier (`blend="overwrite"`, the release's aggregation). The volume is padded with `pad_value` (per channel: the channel's
minimum, i.e. its background) by `border` on each side and at the end wherever the windows
reach past it. A window larger than the padded volume is shrunk to it, kept a multiple of
`multiple` (the network's total pooling factor).

The window: by default ("auto", `InferenceOptions.window=None`) the whole cropped volume in one
window when it fits a voxel budget (200x200x160: a BraTS brain's box fits), else windows of the
training patch with overlap. The networks use instance normalisation, so a window's statistics
shape its output: the release segmented with windows of 128³-140³ (most of a cropped brain), not
its 112³ training patch, and one window over the whole box is the closest to that at the lowest
cost (18 windows of 112³ at overlap 0.5 take five times as long).
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from hved_tf.config import BLENDS, InferenceOptions

GAUSSIAN_SIGMA = 1.0 / 8.0
GAUSSIAN_FLOOR = 1e-3        # weight at an interior's corner relative to its centre, at least


# ------------------------------------------------------------------ planning (TF, eager or graph)

def whole_window(size: Any, border: int, multiple: int) -> Any:
    """The smallest window holding a whole volume.

    Args:
        size: the volume's spatial size [3].
        border: voxels cut from each side of a window.
        multiple: the network's pooling factor.

    Returns:
        int32 [3]: `size` plus the borders, rounded up to a multiple of `multiple`.
    """
    size = tf.cast(size, tf.int32)
    return (size + 2 * border + multiple - 1) // multiple * multiple


def choose_window(size: Any, options: InferenceOptions, multiple: int,
                  fallback: Sequence[int] = (112, 112, 112)) -> Any:
    """The window a volume is segmented with.

    Args:
        size: the volume's spatial size [3].
        options: the inference settings (`window`, `border`, `max_voxels`).
        multiple: the network's pooling factor.
        fallback: the model's training patch (`ModelFacts.patch`).

    Returns:
        int32 [3]: `options.window`, or in "auto" mode the whole volume when it holds at most
        `options.max_voxels` voxels, else `fallback`.
    """
    if options.window is not None:
        return tf.constant(options.window, tf.int32)
    whole = whole_window(size, options.border, multiple)
    fits = tf.reduce_prod(tf.cast(whole, tf.int64)) <= options.max_voxels
    return tf.where(fits, whole, tf.constant(fallback, tf.int32))


def fit_window(size: Any, window: Any, border: int, multiple: int) -> Any:
    """A window shrunk, per axis, to the whole padded volume where it is larger.

    Args:
        size: the volume's spatial size [3].
        window: the window [3].
        border: voxels cut from each side of a window.
        multiple: the network's pooling factor.

    Returns:
        int32 [3].
    """
    return tf.minimum(tf.cast(window, tf.int32), whole_window(size, border, multiple))


def axis_starts(size: Any, interior: Any, overlap: float) -> Any:
    """Where the windows' interiors start along one axis.

    Args:
        size: the axis' voxels.
        interior: a window's interior along it.
        overlap: of neighbouring interiors, in [0, 1).

    Returns:
        int32 [n], increasing, the last one ending at `size` (or 0).
    """
    stride = tf.maximum(1, tf.cast(tf.floor(tf.cast(interior, tf.float64) * (1.0 - overlap)),
                                   tf.int32))
    last = tf.maximum(size - interior, 0)
    starts = tf.concat([tf.range(0, last, stride), [last]], 0)
    return tf.unique(starts)[0]          # increasing already; a repeated last start dropped


def _gaussian_1d(n):
    x = tf.cast(tf.range(n), tf.float64) - tf.cast(n - 1, tf.float64) / 2.0
    sigma = tf.maximum(tf.cast(n, tf.float64) * GAUSSIAN_SIGMA, 1e-6)
    return tf.exp(-0.5 * tf.square(x / sigma))


def blend_weights(interior: Any, blend: str = "constant") -> Any:
    """The weights of an interior's voxels where windows overlap.

    Args:
        interior: its size [3].
        blend: one of `BLENDS`.

    Returns:
        float32 [x, y, z], maximum 1.
    """
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}.")
    interior = tf.cast(interior, tf.int32)
    if blend in ("constant", "overwrite"):      # overwrite: weights unused, later windows win
        return tf.ones(interior, tf.float32)
    gx, gy, gz = (_gaussian_1d(interior[i]) for i in range(3))
    w = gx[:, None, None] * gy[None, :, None] * gz[None, None, :]
    return tf.cast(tf.maximum(w / tf.reduce_max(w), GAUSSIAN_FLOOR), tf.float32)


def entropy(probabilities: Any) -> Any:
    """The Shannon entropy of probability vectors along the last axis.

    Args:
        probabilities: [..., C].

    Returns:
        float32 [...], nats.
    """
    p = tf.cast(probabilities, tf.float32)
    return -tf.reduce_sum(tf.where(p > 0, p * tf.math.log(p), 0.0), axis=-1)


# ------------------------------------------------------------------ NumPy stitching

@dataclasses.dataclass(frozen=True)
class WindowPlan:
    """Where the windows of one volume go."""
    window: tuple          # window size per axis
    border: int            # voxels cut from each side of a window
    starts: tuple          # per axis: the interior starts, in volume coordinates
    pad_after: tuple       # padding at the end of each axis (after `border`)

    @property
    def interior(self) -> tuple:
        """A window without its borders."""
        return tuple(w - 2 * self.border for w in self.window)

    @property
    def count(self) -> int:
        """The number of windows."""
        return int(np.prod([len(s) for s in self.starts]))


def plan_windows(shape: Sequence[int], window: Sequence[int], border: int = 0,
                 overlap: float = 0.0, multiple: int = 1) -> WindowPlan:
    """Window positions covering a volume (see the module docstring).

    Args:
        shape: the volume's spatial shape.
        window: the window (a multiple of `multiple`).
        border: voxels cut from each side of a window.
        overlap: of neighbouring interiors, in [0, 1).
        multiple: the network's pooling factor.

    Returns:
        The WindowPlan.
    """
    shape = tuple(int(s) for s in shape)
    window = tuple(int(w) for w in window)
    if len(shape) != 3 or len(window) != 3:
        raise ValueError(f"shape and window take three sizes, got {shape} and {window}.")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must lie in [0, 1), got {overlap}.")
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}.")
    if any(w % multiple for w in window):
        raise ValueError(f"The window {window} must be a multiple of {multiple} on each axis "
                         "(the network pools that much).")
    fitted = tuple(int(w) for w in fit_window(shape, window, border, multiple).numpy())
    if any(w <= 2 * border for w in fitted):
        raise ValueError(f"A window of {window} leaves nothing inside a border of {border} "
                         "voxels; use a larger window or a smaller border.")
    interior = [w - 2 * border for w in fitted]
    starts = tuple(tuple(int(v) for v in axis_starts(s, i, overlap).numpy())
                   for s, i in zip(shape, interior))
    pad_after = tuple(max(0, st[-1] + i - s) for st, i, s in zip(starts, interior, shape))
    return WindowPlan(fitted, int(border), starts, pad_after)


def _pad(volume, plan, pad_value):
    b = plan.border
    pads = [(b, b + a) for a in plan.pad_after]
    if not any(p for pair in pads for p in pair):
        return volume
    pad_value = np.broadcast_to(np.asarray(pad_value, np.float32), volume.shape[-1:])
    out = np.empty(tuple(s + p + q for s, (p, q) in zip(volume.shape[:3], pads))
                   + volume.shape[3:], np.float32)
    out[...] = pad_value
    out[tuple(slice(p, p + s) for s, (p, _) in zip(volume.shape[:3], pads))] = volume
    return out


@dataclasses.dataclass(frozen=True)
class Tiling:
    """How `sliding_window` lays windows out and stitches them (see the module docstring)."""
    border: int = 0               # voxels cut from each side of a window's output
    overlap: float = 0.0          # of neighbouring interiors, in [0, 1)
    blend: str = "constant"       # "constant" | "gaussian" | "overwrite"
    batch_size: int = 1           # windows per call of `predict`


def sliding_window(predict: Callable, volume: np.ndarray, window: Sequence[int],
                   tiling: Tiling = Tiling(), pad_value: Any = 0.0, multiple: int = 1,
                   progress: Callable | None = None) -> dict[str, np.ndarray]:
    """Outputs stitched from `predict` over windows of a volume, laid out and blended as
    `tiling` says.

    Args:
        predict: [n, *window, C] windows -> {name: [n, *window, K]}.
        volume: [X, Y, Z, C].
        window: the window size.
        tiling: border, overlap, blending, windows per call.
        pad_value: per channel, outside the volume.
        multiple: the network's pooling factor.
        progress: `progress(done, total)` after each call.

    Returns:
        {name: [X, Y, Z, K]}.
    """
    border, overlap, blend, batch_size = (tiling.border, tiling.overlap, tiling.blend,
                                          tiling.batch_size)
    volume = np.asarray(volume)
    if volume.ndim != 4:
        raise ValueError(f"volume must be [X, Y, Z, C], got shape {volume.shape}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    shape = volume.shape[:3]
    plan = plan_windows(shape, window, border, overlap, multiple=multiple)
    padded = _pad(volume, plan, pad_value)
    interior, b = plan.interior, plan.border
    weights = blend_weights(interior, blend).numpy()
    sums, total = {}, np.zeros(shape, np.float32)
    corners = list(itertools.product(*plan.starts))

    def flush(batch_corners):
        windows = np.stack([padded[tuple(slice(c, c + w) for c, w in zip(corner, plan.window))]
                            for corner in batch_corners]).astype(np.float32, copy=False)
        outputs = predict(windows)
        for k, corner in enumerate(batch_corners):
            dst = tuple(slice(c, min(c + i, s)) for c, i, s in zip(corner, interior, shape))
            extent = tuple(d.stop - d.start for d in dst)
            src = tuple(slice(b, b + e) for e in extent)
            w = weights[tuple(slice(0, e) for e in extent)]
            for name, value in outputs.items():
                value = np.asarray(value[k])
                if name not in sums:
                    sums[name] = np.zeros(shape + value.shape[3:], np.float32)
                if blend == "overwrite":
                    sums[name][dst] = value[src]
                else:
                    sums[name][dst] += value[src] * w[..., None]
            if blend == "overwrite":
                total[dst] = 1.0
            else:
                total[dst] += w

    for first in range(0, len(corners), batch_size):
        flush(corners[first:first + batch_size])
        if progress is not None:
            progress(min(first + batch_size, len(corners)), len(corners))
    return {name: value / total[..., None] for name, value in sums.items()}
