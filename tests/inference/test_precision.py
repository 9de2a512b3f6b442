"""bfloat16 inference (hved_tf.inference.precision): asked for where the hardware lacks it, a
warning naming the CPU flag and float32; where it has it, the same weights computing in
bfloat16 with outputs close to float32's and recorded in the settings."""
import keras
import numpy as np
import pytest

from hved_tf.config import InferenceOptions
from hved_tf.inference import precision
from hved_tf.inference.segmenter import KerasSegmenter, whole_box
from hved_tf.models import build_model

CPUINFO = """processor\t: 0
model name\t: Some CPU
flags\t\t: fpu sse2 avx2 avx512f {extra}
"""


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO.format(extra="avx512_bf16"))
    assert {"avx2", "avx512_bf16"} <= precision.cpu_flags(path)
    assert precision.cpu_flags(tmp_path / "none") is None


@pytest.mark.parametrize("flags,gpus,expected", [
    ({"avx512f", "avx512_bf16"}, [], True), ({"amx_bf16"}, [], True),
    ({"avx512f", "avx2"}, [], False), (set(), [], False), ({"avx2"}, ["GPU:0"], True)])
def test_bf16_hardware(flags, gpus, expected):
    assert precision.bf16_hardware(flags, gpus) is expected


def test_bfloat16_without_the_cpu_flag_warns_and_runs_float32(warnings_said):
    assert precision.precision_to_use("bfloat16", supported=False) == "float32"
    assert "avx512_bf16" in warnings_said.text and "float32" in warnings_said.text
    warnings_said.clear()
    assert precision.precision_to_use("bfloat16", supported=True) == "bfloat16"
    assert precision.precision_to_use("float32", supported=False) == "float32"
    assert not warnings_said.text


def test_unknown_precision_refused():
    with pytest.raises(ValueError, match="float32, bfloat16"):
        precision.precision_to_use("float16")
    with pytest.raises(ValueError, match="--inference_precision"):
        InferenceOptions(precision="half").validate()


def test_bfloat16_twin_shares_the_weights_and_stays_close():
    model = build_model("u_hved", base_filters=4, levels=3, seed=3)
    assert precision.model_in_precision(model, "float32") is model
    twin = precision.model_in_precision(model, "bfloat16")
    assert twin.compute_dtype == "bfloat16" and twin.encoders[0].compute_dtype == "bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"       # left as it was
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(0)
    image = rng.normal(size=(1, 16, 16, 16, 4)).astype(np.float32)
    inputs = {"image": image, "mask": np.ones((1, 4), np.float32)}
    p32 = model.infer(inputs)["seg_probabilities"].numpy()
    p16 = twin.infer(inputs)["seg_probabilities"].numpy()
    assert p16.dtype == np.float32
    # bfloat16 keeps 8 bits of mantissa. Through this random network the probabilities move
    # by 6e-3 on average and 0.08 at most (measured).
    diff = np.abs(p32 - p16)
    assert 0 < diff.mean() < 0.015 and diff.max() < 0.15


def test_segmenter_records_the_precision_used(monkeypatch):
    monkeypatch.setattr(precision, "bf16_hardware", lambda *a, **k: True)
    model = build_model("u_hved", base_filters=4, levels=3, seed=3)
    image = np.random.default_rng(1).normal(size=(16, 16, 16, 4)).astype(np.float32)
    for asked in ("float32", "bfloat16"):
        segmenter = KerasSegmenter(model, InferenceOptions(num_samples=2, precision=asked))
        seg = segmenter.segment_prepared_image(image, np.ones(4), whole_box(image.shape[:3]))
        assert seg.settings["precision"] == asked and seg.settings["precision_used"] == asked
