"""Losses against NumPy references and closed forms."""
import numpy as np
import pytest
import tensorflow as tf

from hved_tf import losses
from hved_tf.modalities import SUBSETS


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_dice_loss(logits, labels, num_eps=0.0, den_eps=1e-5):
    p = _softmax(logits.astype(np.float64))
    g = np.eye(logits.shape[-1])[labels]
    per_sample = []
    for b in range(len(p)):
        axes = tuple(range(p[b].ndim - 1))
        num = 2 * (p[b] * g[b]).sum(axes) + num_eps
        den = (p[b] ** 2).sum(axes) + g[b].sum(axes) + den_eps
        per_sample.append(1 - np.mean(num / den))
    return np.mean(per_sample)


@pytest.fixture
def seg_case():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 5, 3, 4)).astype(np.float32)
    labels = rng.integers(0, 3, size=(2, 4, 5, 3))  # class 3 absent: its Dice is 0
    return logits, labels


def test_cross_entropy_against_numpy(seg_case):
    logits, labels = seg_case
    p = _softmax(logits.astype(np.float64))
    expected = -np.mean(np.log(np.take_along_axis(p, labels[..., None], -1)))
    assert float(losses.cross_entropy(logits, labels)) == pytest.approx(expected, rel=1e-5)
    assert float(losses.cross_entropy(logits, labels[..., None])) == pytest.approx(expected, rel=1e-5)


def test_dice_against_numpy_with_absent_class(seg_case):
    logits, labels = seg_case
    assert float(losses.dice_loss(logits, labels)) == pytest.approx(
        _np_dice_loss(logits, labels), rel=1e-5)
    assert float(losses.dice_loss(logits, labels, numerator_epsilon=1e-5)) == pytest.approx(
        _np_dice_loss(logits, labels, num_eps=1e-5), rel=1e-5)


def test_dice_hand_case():
    # One sample, two voxels, perfectly confident and right on classes 0 and 1; classes 2, 3
    # absent: Dice = (1 + 1 + 0 + 0) / 4 up to the epsilon, loss 0.5.
    logits = np.array([[[100.0, 0, 0, 0], [0, 100.0, 0, 0]]], np.float32)
    labels = np.array([[0, 1]])
    assert float(losses.dice_loss(logits, labels)) == pytest.approx(0.5, abs=1e-5)
    # NiftyNet 0.5.0's variant gives an absent, unpredicted class a Dice of 1.
    assert float(losses.dice_loss(logits, labels, numerator_epsilon=1e-5)) == pytest.approx(
        0.0, abs=1e-4)


def test_segmentation_loss_and_label_shapes(seg_case):
    logits, labels = seg_case
    total = float(losses.segmentation_loss(logits, labels[..., None]))
    assert total == pytest.approx(float(losses.cross_entropy(logits, labels))
                                  + float(losses.dice_loss(logits, labels)), rel=1e-6)
    with pytest.raises(ValueError, match="labels must have shape"):
        losses.segmentation_loss(logits, labels[..., None, None])
    with pytest.raises(ValueError, match="labels must have shape"):
        losses.segmentation_loss(logits, labels[0])


def test_kl_normal_closed_form_and_zero():
    m1, lv1, m2, lv2 = 0.3, np.log(0.5), -0.2, np.log(2.0)
    expected = np.log(np.sqrt(2.0) / np.sqrt(0.5)) + (0.5 + 0.5 ** 2) / (2 * 2.0) - 0.5
    assert float(losses.kl_normal(m1, lv1, m2, lv2, epsilon=0.0)) == pytest.approx(expected, 1e-6)
    assert float(losses.kl_normal(m1, lv1, m2, lv2)) == pytest.approx(expected, rel=1e-6)
    rng = np.random.default_rng(1)
    m, lv = rng.normal(size=100), rng.uniform(-3, 3, 100)
    np.testing.assert_allclose(losses.kl_normal(m, lv, m, lv, epsilon=0.0), 0.0, atol=1e-6)
    np.testing.assert_allclose(losses.kl_normal(m, lv, m, lv), 0.0, atol=1e-5)


def _np_poe(mean, logvar, subset):
    t = 1 + sum(1 / (np.exp(logvar[i]) + 1e-7) for i in subset)
    mu = sum(mean[i] / (np.exp(logvar[i]) + 1e-7) for i in subset) / t
    return mu, np.log(1 / t + 1e-7)


def _np_kl(m1, lv1, m2, lv2):
    return 0.5 * np.mean(-1 + lv2 - lv1 + (np.exp(lv1) + (m1 - m2) ** 2) / (np.exp(lv2) + 1e-7))


def test_kl_original_against_release_formula():
    rng = np.random.default_rng(2)
    mean = rng.normal(size=(1, 4, 3, 2, 2, 3))
    logvar = rng.uniform(-1, 1, size=(1, 4, 3, 2, 2, 3))
    drawn = (1, 3)
    mask = np.zeros((1, 4), np.float32); mask[0, list(drawn)] = 1
    pm, plv = _np_poe(mean[0], logvar[0], drawn)
    inter = sum(_np_kl(pm, plv, *_np_poe(mean[0], logvar[0], s)) for s in SUBSETS) / 14
    prior = sum(_np_kl(*_np_poe(mean[0], logvar[0], s), 0, 0) for s in SUBSETS) / 15
    got = float(losses.kl_level(mean.astype(np.float32), logvar.astype(np.float32), mask)[0])
    assert got == pytest.approx(inter + prior, rel=1e-5)
    paper = float(losses.kl_level(mean.astype(np.float32), logvar.astype(np.float32), mask,
                                  variant="paper")[0])
    assert paper == pytest.approx(_np_kl(pm, plv, 0, 0), rel=1e-5)
    # Restricted to the available modalities T1c and FLAIR: subsets {T1c}, {FLAIR}, both.
    avail = np.array([[0, 1, 0, 1]], np.float32)
    own = [(1,), (3,), (1, 3)]
    inter = sum(_np_kl(pm, plv, *_np_poe(mean[0], logvar[0], s)) for s in own) / 2
    prior = sum(_np_kl(*_np_poe(mean[0], logvar[0], s), 0, 0) for s in own) / 3
    got = float(losses.kl_level(mean.astype(np.float32), logvar.astype(np.float32), mask, avail)[0])
    assert got == pytest.approx(inter + prior, rel=1e-5)
    with pytest.raises(ValueError, match="Unknown KL variant"):
        losses.kl_level(mean, logvar, mask, variant="both")


def test_reconstruction_loss_over_available_modalities():
    rng = np.random.default_rng(3)
    recon = rng.normal(size=(2, 3, 3, 3, 4)).astype(np.float32)
    image = rng.normal(size=(2, 3, 3, 3, 4)).astype(np.float32)
    assert float(losses.reconstruction_loss(recon, image)) == pytest.approx(
        np.mean((recon - image) ** 2), rel=1e-5)
    avail = np.array([[1, 1, 1, 1], [1, 0, 0, 1]], np.float32)
    sq = (recon - image) ** 2
    expected = (sq[0].sum() + sq[1][..., [0, 3]].sum()) / (27 * 6)
    assert float(losses.reconstruction_loss(recon, image, avail)) == pytest.approx(expected, 1e-5)


def test_weight_decay_is_mean_over_kernels():
    k1 = tf.Variable(np.ones((3, 3, 3, 2, 2), np.float32))
    k2 = tf.Variable(np.full((1, 1, 1, 2, 1), 2.0, np.float32))
    expected = np.mean([1e-5 * 108 / 2, 1e-5 * 8 / 2])
    assert float(losses.weight_decay([k1, k2])) == pytest.approx(expected, rel=1e-6)


def test_total_loss_weights():
    terms = {"seg_dice": 1.0, "seg_ce": 2.0, "kl": 3.0, "recon": 4.0, "decay": 5.0}
    assert float(losses.total_loss(terms)) == pytest.approx(1 + 2 + 0.3 + 0.4 + 5)
    w = losses.LossWeights(kl=1.0, recon=0.0)
    assert float(losses.total_loss(terms, w)) == pytest.approx(1 + 2 + 3 + 5)
    with pytest.raises(ValueError):
        losses.LossWeights(kl=-1).validate()


@pytest.mark.parametrize("spread", [1.0, 6.0])
def test_kl_original_analytic_gradient_equals_autodiff(spread):
    rng = np.random.default_rng(4)
    mean = tf.constant(rng.normal(0, spread, size=(2, 4, 3, 3, 2, 2)).astype(np.float32))
    logvar = tf.constant(rng.uniform(-spread, spread, size=(2, 4, 3, 3, 2, 2)).astype(np.float32))
    mask = tf.constant([[1.0, 0, 1, 0], [0, 0, 0, 1]])
    avail = tf.constant([[1.0, 1, 1, 1], [0, 1, 1, 1]])
    out = []
    for fused in (True, False):
        with tf.GradientTape() as tape:
            tape.watch([mean, logvar])
            value = losses.kl_level(mean, logvar, mask, avail, fused=fused)
            total = tf.reduce_sum(value * tf.constant([1.0, 2.0]))
        out.append((value, *tape.gradient(total, [mean, logvar])))
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6 * float(np.abs(b).max()))
