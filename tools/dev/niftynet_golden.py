"""Regenerates tests/fixtures/niftynet_golden.npz: NiftyNet 0.5.0's own intensity chain on test volumes.

    pip download --no-deps niftynet==0.5.0 -d /tmp/nn && cd /tmp/nn && \\
        python -m zipfile -e NiftyNet-0.5.0-py2.py3-none-any.whl src
    python -m tools.dev.niftynet_golden --niftynet_src /tmp/nn/src

Runs NiftyNet's PadLayer (10, 'minimum'), BinaryMaskingLayer ('mean_plus', 'and'),
HistogramNormalisationLayer ('percentile', cutoff 0.001/0.999, landmarks trained by NiftyNet's
create_mapping_from_multimod_arrayfiles) and MeanVarNormalisationLayer, then the padding's
inverse, on the volumes of `golden_volumes` (shared with the test, generated from seeds), and
stores NiftyNet's landmarks and outputs. NiftyNet is only imported here, never by the package.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "fixtures" / "niftynet_golden.npz"
MODALITIES_NN = ["T1", "T1c", "T2", "Flair"]


def golden_volumes():
    """Deterministic brain-like test volumes [X, Y, Z, 4]; case 1 lacks T2."""
    volumes = []
    for seed, shape, missing in ((0, (16, 17, 18), None), (1, (18, 16, 17), 2),
                                 (2, (17, 18, 16), None)):
        rng = np.random.default_rng(seed)
        grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"), -1)
        inside = np.sum((grid / [0.8, 0.7, 0.75]) ** 2, -1) < 1
        image = np.zeros((*shape, 4), np.float32)
        for m in range(4):
            base = rng.gamma(4 + m, 20 + 5 * m, size=shape)
            image[..., m] = np.where(inside, base, 0)
        if missing is not None:
            image[..., missing] = 0
        volumes.append(image)
    return volumes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--niftynet_src", required=True)
    parser.add_argument("--output", default=str(GOLDEN))
    args = parser.parse_args(argv)
    import tempfile
    import tensorflow as tf
    tf.compat.v1.disable_eager_execution()     # its layers are tf.make_template objects
    sys.modules["tensorflow"] = tf.compat.v1   # NiftyNet 0.5.0 is TF1 code
    import types
    package = types.ModuleType("niftynet")     # skip niftynet/__init__.py (logger set-up only)
    package.__path__ = [str(pathlib.Path(args.niftynet_src) / "niftynet")]
    sys.modules["niftynet"] = package
    variables = types.ModuleType("niftynet.engine.application_variables")
    variables.RESTORABLE = "NiftyNetObjectsToRestore"   # needs tf.contrib; only this is used
    sys.modules["niftynet.engine.application_variables"] = variables
    import niftynet.utilities.histogram_standardisation as hs
    from niftynet.layer.binary_masking import BinaryMaskingLayer
    from niftynet.layer.histogram_normalisation import HistogramNormalisationLayer
    from niftynet.layer.mean_variance_normalisation import MeanVarNormalisationLayer
    from niftynet.layer.pad import PadLayer
    if not hasattr(np, "bool"):
        np.bool = bool                         # removed from NumPy after NiftyNet's time

    class _Image:
        def __init__(self, data):
            self.data = data

        def get_data(self):
            return self.data

    volumes = golden_volumes()
    cutoff = (0.001, 0.999)
    masking = BinaryMaskingLayer(type_str="mean_plus", multimod_fusion="and")
    # NiftyNet cannot train on a missing modality (its mask asserts): train on cases 0 and 2.
    files = [{"image": _Image(volumes[k][:, :, :, None, :])} for k in (0, 2)]
    mapping = hs.create_mapping_from_multimod_arrayfiles(
        files, "image", MODALITIES_NN, MODALITIES_NN, cutoff, masking)
    outputs = {}
    with tempfile.TemporaryDirectory() as tmp:
        hist = pathlib.Path(tmp) / "hist.txt"
        hs.write_all_mod_mapping(str(hist), mapping)
        for k, volume in enumerate(volumes):
            pad = PadLayer(image_name=["image"], border=(10, 10, 10), mode="minimum")
            hist_layer = HistogramNormalisationLayer(
                image_name="image", modalities=MODALITIES_NN, model_filename=str(hist),
                binary_masking_func=masking, norm_type="percentile", cutoff=cutoff)
            whitening = MeanVarNormalisationLayer(image_name="image",
                                                  binary_masking_func=masking)
            data = {"image": volume[:, :, :, None, :].copy()}
            data, mask = pad(data)
            data, mask = hist_layer(data, mask)
            data, mask = whitening(data, mask)
            data, _ = pad.inverse_op(data)
            outputs[f"output_{k}"] = np.asarray(data["image"][:, :, :, 0, :], np.float32)
    landmarks = np.stack([np.asarray(mapping[m], np.float64) for m in MODALITIES_NN])
    np.savez_compressed(args.output, landmarks=landmarks, **outputs)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
