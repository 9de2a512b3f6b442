"""The training step: subset draws in TF, finite losses, gradient isolation, replica scaling."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from hved_tf.modalities import SUBSETS, subset_index, subset_mask
from hved_tf.models import build_model
from hved_tf.models.subsets import draw_subset_masks
from numpy_reference import paper_subset_probabilities

SMALL = dict(base_filters=4, levels=3)
SHAPE = (12, 12, 12)


def _batch(batch=1, seed=0, available=None):
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(batch, *SHAPE, 4)).astype(np.float32)
    labels = rng.integers(0, 4, size=(batch, *SHAPE, 1)).astype(np.int32)
    avail = np.ones((batch, 4), np.float32) if available is None else np.asarray(available, np.float32)
    return {"image": tf.constant(image), "available": tf.constant(avail)}, tf.constant(labels)


def _codes(masks):
    return [subset_index(tuple(np.flatnonzero(m))) for m in masks]


def test_tf_draw_follows_the_paper():
    import keras
    gen = keras.random.SeedGenerator(0)
    masks = draw_subset_masks(tf.ones((30000, 4)), gen).numpy()
    freq = np.bincount(_codes(masks), minlength=15) / len(masks)
    np.testing.assert_allclose(freq, paper_subset_probabilities(), atol=0.01)
    avail = np.tile([1, 0, 1, 1], (20000, 1)).astype(np.float32)
    masks = draw_subset_masks(avail, gen).numpy()
    assert not masks[:, 1].any()  # never a modality the subject lacks
    freq = np.bincount(_codes(masks), minlength=15) / len(masks)
    np.testing.assert_allclose(freq, paper_subset_probabilities([1, 0, 1, 1]), atol=0.012)
    table = np.zeros(15); table[subset_index((0, 2))] = 3; table[subset_index((3,))] = 1
    masks = draw_subset_masks(tf.ones((8000, 4)), gen, table).numpy()
    freq = np.bincount(_codes(masks), minlength=15) / len(masks)
    assert set(np.flatnonzero(freq)) == {subset_index((0, 2)), subset_index((3,))}
    assert freq[subset_index((0, 2))] == pytest.approx(0.75, abs=0.02)
    with pytest.raises(tf.errors.InvalidArgumentError, match="no drawable modality subset"):
        draw_subset_masks(tf.constant([[0.0, 1, 0, 0]]), gen, table)


@pytest.mark.parametrize("name", ["u_hved", "u_hemis"])
def test_every_subset_finite_and_absent_encoders_get_no_segmentation_gradient(name):
    model = build_model(name, seed=0, **SMALL)
    x, labels = _batch()
    variables = model.trainable_variables
    encoder_of = {id(v): i for i, enc in enumerate(model.encoders) for v in enc.trainable_variables}

    @tf.function
    def seg_grads(mask):
        with tf.GradientTape() as tape:
            terms = model.compute_loss_terms(x["image"], labels, mask, x["available"], True)
            seg = terms["seg_dice"] + terms["seg_ce"]
        return terms, tape.gradient(seg, variables)

    for subset in SUBSETS:
        terms, grads = seg_grads(tf.constant(subset_mask(subset)[None]))
        for term, value in terms.items():
            assert np.isfinite(value.numpy()), (subset, term)
        for v, g in zip(variables, grads):
            i = encoder_of.get(id(v))
            if i is None:
                continue
            norm = 0.0 if g is None else float(tf.norm(g))
            if i in subset:
                assert norm > 0, (subset, v.path)
            else:
                assert norm == 0, (subset, v.path)


def test_train_step_changes_only_what_it_should():
    # A fixed subset (T1c + FLAIR), the paper's KL and no weight decay: the encoders of T1 and
    # T2 get no gradient at all and must not move; everything on the path must.
    probs = np.zeros(15); probs[subset_index((1, 3))] = 1.0
    model = build_model("u_hved", seed=0, subset_probabilities=probs, kl_variant="paper",
                        loss_weights={"decay": 0.0}, **SMALL)
    model.compile(optimizer=model.default_optimizer(1e-2))
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    traces, step = [], model.train_step
    model.train_step = lambda data: traces.append(1) or step(data)
    logs = model.fit(tf.data.Dataset.from_tensors(_batch(batch=2)).repeat(2), verbose=0).history
    # Traced once: the optimizer's slots exist before the step (a tf.function that creates
    # variables is traced twice, which made U-HVED's training start ~16 s later).
    assert len(traces) == 1
    assert set(logs) == {"loss", "seg_dice", "seg_ce", "kl", "recon", "decay"}
    assert all(np.isfinite(v[-1]) for v in logs.values())
    for v in model.trainable_variables:
        moved = not np.array_equal(before[v.path], v.numpy())
        absent = "encoder_T1/" in v.path or "encoder_T2/" in v.path
        assert moved != absent, v.path
    assert model.optimizer.iterations.numpy() == 2
    assert model.optimizer.epsilon == pytest.approx(1e-8)


def test_train_step_respects_available_modalities():
    model = build_model("u_hemis", seed=0, **SMALL)
    model.compile(optimizer=model.default_optimizer())
    x, y = _batch(batch=2, available=[[1, 0, 0, 0], [0, 0, 1, 1]])
    before = {v.path: v.numpy().copy() for v in model.encoders[1].trainable_variables}
    model.fit(tf.data.Dataset.from_tensors((x, y)).repeat(2), verbose=0)
    # T1c is available to no subject: its encoder only feels the weight decay, a shrinkage.
    for v in model.encoders[1].trainable_variables:
        if v.path.endswith("kernel"):
            ratio = v.numpy() / np.where(before[v.path] == 0, 1, before[v.path])
            assert np.all(ratio <= 1.0 + 1e-6), v.path


def test_hemis_and_unet_train():
    for name, options in (("hemis", {"backend_filters": 4}), ("unet", {**SMALL, "subset": "T2"})):
        model = build_model(name, seed=0, **options)
        model.compile(optimizer=model.default_optimizer())
        logs = model.fit(tf.data.Dataset.from_tensors(_batch()).repeat(2), verbose=0).history
        assert set(logs) == {"loss", "seg_dice", "seg_ce", "decay"}
        assert np.isfinite(logs["loss"][-1])


MIRRORED = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    from hved_tf.models import build_model
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 12, 12, 12, 4)).astype(np.float32)
    y = rng.integers(0, 4, size=(2, 12, 12, 12, 1)).astype(np.int32)
    probs = np.zeros(15); probs[-1] = 1.0
    data = tf.data.Dataset.from_tensors(({"image": x, "available": np.ones((2, 4), np.float32)}, y))
    init = None
    def run(strategy):
        nonlocal_init = init
        with strategy.scope():
            model = build_model("u_hemis", seed=0, base_filters=4, levels=3,
                                subset_probabilities=probs)
            # Plain SGD: Adam's first steps are ~lr·sign(g), which turns round-off in
            # near-zero gradients into lr-sized differences and would hide what we test.
            model.compile(optimizer=keras.optimizers.SGD(0.1))
            if nonlocal_init is not None:
                model.set_weights(nonlocal_init)
        model.fit(data.repeat(2), verbose=0)
        return [v.numpy() for v in model.trainable_variables]
    model0 = build_model("u_hemis", base_filters=4, levels=3)
    init = model0.get_weights()
    start = [v.numpy() for v in model0.trainable_variables]
    one = run(tf.distribute.OneDeviceStrategy("/cpu:0"))
    two = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    # Compared on the updates, relative to the largest one (0.037): the replicas sum their
    # gradients in another order, and the round-off differed from 1e-7 to 2.6e-5 absolute
    # between runs (7e-4 of the update); one step too many differs by 32 %, a gradient summed
    # twice or averaged once too often by about 100 %.
    update = max(float(np.max(np.abs(a - s))) for a, s in zip(one, start))
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(one, two))
    print("largest update", update, "max abs difference", worst, "relative", worst / update)
    sys.exit(0 if update > 0 and worst <= 1e-2 * update else 1)
""")


def test_mirrored_two_replicas_equal_one_device():
    run = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]


def test_mixed_bfloat16_trains_with_float32_losses_and_outputs():
    import keras
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model("u_hved", seed=0, **SMALL)
        model.compile(optimizer=model.default_optimizer())
        logs = model.fit(tf.data.Dataset.from_tensors(_batch()).repeat(2), verbose=0).history
        assert all(np.isfinite(v[-1]) for v in logs.values())
        out = model({"image": _batch()[0]["image"], "mask": tf.ones((1, 4))})
        assert out["seg_logits"].dtype == tf.float32 and out["recon"].dtype == tf.float32
        assert model.trainable_weights[0].dtype == "float32"          # float32 master weights
        assert model.fusions[0].compute_dtype == "float32"            # PoE stays float32
        assert model.encoders[0].blocks[0].unit_0.conv.compute_dtype == "bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
