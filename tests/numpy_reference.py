"""An independent NumPy (float64) implementation of the released U-HVED and U-HeMIS forward pass.

It reads weights by their ORIGINAL NiftyNet names, so a test that compares it with our Keras model
after loading a checkpoint checks the name mapping and the architecture at once. Written from the
facts of docs/explanation/design.md (The networks), sharing no code with the package.
"""
import itertools
import math

import numpy as np

ORIG_MODS = ("T1", "T1c", "T2", "Flair")


def conv3d_same(x, w):
    """x [X, Y, Z, Cin], w [k, k, k, Cin, Cout], stride 1, SAME padding, no bias."""
    k = w.shape[0]
    p = (k - 1) // 2
    xp = np.pad(x, ((p, k - 1 - p), (p, k - 1 - p), (p, k - 1 - p), (0, 0)))
    X, Y, Z, _ = x.shape
    out = np.zeros((X, Y, Z, w.shape[-1]))
    for dx in range(k):
        for dy in range(k):
            for dz in range(k):
                out += xp[dx:dx + X, dy:dy + Y, dz:dz + Z] @ w[dx, dy, dz]
    return out


def instance_norm(x, gamma, beta, eps=1e-6):
    mean = x.mean(axis=(0, 1, 2))
    var = x.var(axis=(0, 1, 2))
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def leaky(x, slope=0.02):
    return np.where(x >= 0, x, slope * x)


def max_pool_same(x):
    """2x2x2, stride 2, SAME: odd sizes padded at the end."""
    pads = [(0, s % 2) for s in x.shape[:3]] + [(0, 0)]
    xp = np.pad(x, pads, constant_values=-np.inf)
    X, Y, Z, C = xp.shape
    return xp.reshape(X // 2, 2, Y // 2, 2, Z // 2, 2, C).max(axis=(1, 3, 5))


def resize_axis_tf1(x, out_size, axis):
    """TF1 resize_bilinear rule along one axis (align_corners=False, half_pixel_centers=False)."""
    n = x.shape[axis]
    scale = np.float32(n) / np.float32(out_size)
    src = np.arange(out_size, dtype=np.float32) * scale
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    frac = (src - lo).astype(np.float64)
    a, b = np.take(x, lo, axis=axis), np.take(x, hi, axis=axis)
    shape = [1] * x.ndim
    shape[axis] = out_size
    return a + (b - a) * frac.reshape(shape)


def resize_tf1_3d(x, size):
    """x [X, Y, Z, C] to `size`, each axis by the TF1 rule (bilinear is separable)."""
    for axis, s in enumerate(size):
        x = resize_axis_tf1(x, s, axis)
    return x


def unit(x, w, prefix, i):
    x = instance_norm(x, w[f"{prefix}/in_{i}/InstanceNorm/gamma"],
                      w[f"{prefix}/in_{i}/InstanceNorm/beta"])
    return conv3d_same(leaky(x), w[f"{prefix}/conv_{i}/w"])


def encoder(x, w, mod, levels=4):
    x = leaky(conv3d_same(x, w[f"VAE/ConvEncoder/conv_0_{mod}_leakyrelu/conv_/w"]))
    skips = []
    for level in range(1, levels + 1):
        prefix = f"VAE/ConvEncoder/block_{level}_{mod}"
        x = unit(unit(x, w, prefix, 0), w, prefix, 1)
        skips.append(x)
        if level < levels:
            x = max_pool_same(x)
    return skips


def decoder(skips, w, head, final):
    x = skips[-1]
    for j in range(1, len(skips)):
        skip = skips[len(skips) - 1 - j]
        x = np.concatenate([resize_tf1_3d(x, skip.shape[:3]), skip], axis=-1)
        prefix = f"VAE/ConvDecoderImg/block_{j}_{head}"
        x = unit(unit(x, w, prefix, 0), w, prefix, 1)
    return conv3d_same(x, w[f"VAE/ConvDecoderImg/{final}/conv_/w"])


def poe_mean(means, logvars, present):
    """Posterior mean of the present experts and the N(0, 1) prior (release's formula)."""
    t_sum, mu_sum = 1.0, 0.0
    for m, lv, p in zip(means, logvars, present):
        if p:
            t = 1.0 / (np.exp(lv) + 1e-7)
            t_sum = t_sum + t
            mu_sum = mu_sum + m * t
    return mu_sum / t_sum


def u_hved_forward(image, w, present):
    """image [X, Y, Z, 4]; present: 4 booleans. Posterior-mean latents for every decoder.

    Returns (seg_logits [X, Y, Z, 4], recon [X, Y, Z, 4]).
    """
    image = image * np.asarray(present, float)
    per_mod = [encoder(image[..., i:i + 1], w, mod) for i, mod in enumerate(ORIG_MODS)]
    latents = []
    for level in range(4):
        feats = [skips[level] for skips in per_mod]
        c = feats[0].shape[-1] // 2
        means = [f[..., :c] for f in feats]
        logvars = [np.clip(f[..., c:], -50, 50) for f in feats]
        latents.append(poe_mean(means, logvars, present))
    heads = ["T1", "T1c", "T2", "Flair", "seg"]
    outs = [decoder(latents, w, h, "final_conv_seg" if k == 0 else f"final_conv_seg_{k}")
            for k, h in enumerate(heads)]
    return outs[4], np.concatenate(outs[:4], axis=-1)


def u_hemis_forward(image, w, present):
    image = image * np.asarray(present, float)
    per_mod = [encoder(image[..., i:i + 1], w, mod) for i, mod in enumerate(ORIG_MODS)]
    fused = []
    for level in range(4):
        feats = np.stack([per_mod[i][level] for i in range(4) if present[i]])
        fused.append(np.concatenate([feats.mean(0), feats.var(0)], axis=-1))
    return decoder(fused, w, "seg", "final_conv_seg")


def paper_subset_probabilities(available=None):
    """float64 [15]: the paper's draw (k uniform in 1..n, then a uniform subset of size k) over
    the subsets of the available modalities: P(s) = 1 / (n C(n, |s|))."""
    subsets = [s for k in range(1, 5) for s in itertools.combinations(range(4), k)]
    avail = np.ones(4) if available is None else np.asarray(available, float)
    n = int(np.sum(avail > 0))
    return np.array([1.0 / (n * math.comb(n, len(s))) if all(avail[i] > 0 for i in s) else 0.0
                     for s in subsets])
