"""Builds tests/fixtures/niftynet_augment.npz: NiftyNet 0.5.0's own padding, flip and
antialiased zoom layers run on small volumes with forced (matched) draws, for
tests/data/test_niftynet_augment.py. The test suite reads the fixture; it never needs NiftyNet.

    python -m tools.dev.niftynet_augment_fixtures [--niftynet_dir DIR] [--out PATH]

It installs `niftynet==0.5.0` with `pip install --no-deps --target <a temporary folder>` (or
uses an unpacked copy given with --niftynet_dir) and imports three of its modules,
`niftynet/layer/pad.py`, `rand_flip.py` and `rand_spatial_scaling.py`, with this
interpreter's NumPy and SciPy. They need TensorFlow 1 only to build a layer's variable scope,
so these stubs stand in, and nothing else of NiftyNet is imported:
- `tensorflow`: `make_template(name, fn, ...)` returns `fn`; `logging` has no-op `info`,
  `warning` and `fatal`;
- `niftynet`: a bare package over the installed folder (its `__init__` would import the whole
  application and TensorFlow 1);
- `niftynet.engine.application_variables`: only the `RESTORABLE` name `base_layer` imports.

Inputs are NiftyNet's shapes: images [X, Y, Z, 1, M] float32 and labels [X, Y, Z, 1, 1] float32
(its loader's dtype for labels). Each case forces the zooms (`_rand_zoom`) and flips
(`_rand_flip`) that NiftyNet would have drawn, then runs the layers in NiftyNet's order: pad,
flip, zoom. The fixture records the NumPy and SciPy versions it was made with.
"""
from __future__ import annotations

import argparse
import importlib
import pathlib
import subprocess
import sys
import tempfile
import types

import numpy as np
import scipy

REPO = pathlib.Path(__file__).resolve().parents[2]
PADDING = 3
CASES = {                     # name: (zooms, flips)
    "all_below_1": ((0.91, 0.94, 0.97), (True, False, True)),
    "all_below_1_no_flip": ((0.9, 0.92, 0.95), (False, False, False)),
    "mixed": ((0.93, 1.06, 0.98), (False, True, False)),
    "all_above_1": ((1.04, 1.09, 1.02), (True, True, True)),
    # SciPy's zoom leaves the last plane along x zero at this size and zoom (the position of
    # the last output voxel falls a rounding error past the input's edge): flipping after the
    # zoom would move that plane to the other end.
    "zero_last_plane": ((0.96437, 1.03, 0.95), (True, False, False)),
}


def install_niftynet(target):
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                    str(target), "niftynet==0.5.0"], check=True)
    return pathlib.Path(target) / "niftynet"


def import_layers(niftynet_dir):
    """NiftyNet's pad, flip and scaling layer modules, imported with the stubs above."""
    noop = staticmethod(lambda *args, **kwargs: None)
    tf = types.ModuleType("tensorflow")
    tf.make_template = lambda name, fn, create_scope_now_=True, **kw: fn
    tf.logging = type("logging", (), {"info": noop, "warning": noop, "fatal": noop})
    package = types.ModuleType("niftynet")
    package.__path__ = [str(niftynet_dir)]
    engine = types.ModuleType("niftynet.engine")
    engine.__path__ = []
    variables = types.ModuleType("niftynet.engine.application_variables")
    variables.RESTORABLE = "NiftyNetObjectsToRestore"
    sys.modules.update({"tensorflow": tf, "niftynet": package, "niftynet.engine": engine,
                        "niftynet.engine.application_variables": variables})
    return tuple(importlib.import_module(f"niftynet.layer.{name}")
                 for name in ("pad", "rand_flip", "rand_spatial_scaling"))


def inputs(rng):
    """A whitened-looking 2-channel image with a background that does not reach every line,
    and a label of classes 0-3 touching the volume's border."""
    shape = (25, 17, 13)                           # padded: 31 x 23 x 19
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    radius = np.sqrt(np.sum((grid / np.array([1.1, 0.8, 0.9]).reshape(3, 1, 1, 1)) ** 2, 0))
    brain = radius < 1.0
    image = np.where(brain[..., None], rng.normal(0.5, 1.0, shape + (2,)), -1.7)
    image[..., 1] += 0.3 * grid[0]
    tumour = np.sqrt(np.sum((grid - np.array([0.5, 0.1, 0.0]).reshape(3, 1, 1, 1)) ** 2, 0))
    label = np.zeros(shape)
    label[(tumour < 0.75) & brain] = 2
    label[tumour < 0.5] = 1
    label[(tumour < 0.5) & (tumour > 0.3)] = 3
    label[-1, 6:11, :] = 2                         # lines without background at the border
    return (image[:, :, :, None, :].astype(np.float32),
            label[:, :, :, None, None].astype(np.float32))


def run_case(layers, image, label, zooms, flips):
    pad, rand_flip, scaling = layers
    orders = {"image": [3] * image.shape[-1], "label": [0]}
    data = {"image": image.copy(), "label": label.copy()}
    data, _ = pad.PadLayer(image_name=("image", "label"), border=(PADDING,) * 3)(data)
    padded = {k: v.copy() for k, v in data.items()}
    flip = rand_flip.RandomFlipLayer(flip_axes=(0, 1, 2))
    flip._rand_flip = np.array(flips)
    data = flip(data, orders)
    zoom = scaling.RandomSpatialScalingLayer(-10.0, 10.0, antialiasing=True)
    zoom._rand_zoom = np.array(zooms)
    data = zoom(data, orders)
    return padded, data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--niftynet_dir", default="", help="An unpacked niftynet/ folder.")
    parser.add_argument("--out", default=str(REPO / "tests" / "fixtures" /
                                             "niftynet_augment.npz"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(args.niftynet_dir) if args.niftynet_dir else install_niftynet(tmp)
        layers = import_layers(folder)
        image, label = inputs(np.random.default_rng(2019))
        arrays = {"image": image, "label": label, "padding": np.int64(PADDING),
                  "versions": np.array([f"niftynet 0.5.0, numpy {np.__version__}, "
                                        f"scipy {scipy.__version__}"])}
        for name, (zooms, flips) in CASES.items():
            padded, out = run_case(layers, image, label, zooms, flips)
            arrays.update({f"{name}/zooms": np.array(zooms), f"{name}/flips": np.array(flips),
                           f"{name}/image": out["image"], f"{name}/label": out["label"]})
            arrays.update({"padded_image": padded["image"], "padded_label": padded["label"]})
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({arrays['versions'][0]})")


if __name__ == "__main__":
    main()
