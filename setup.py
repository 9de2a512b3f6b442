"""Installs hved_tf: U-HVED (Dorent et al., MICCAI 2019) in TensorFlow 2 / Keras 3."""
from setuptools import find_packages, setup

setup(
    name="hved_tf",
    version="0.1.0",
    description=(
        "Hetero-modal variational encoder-decoder (U-HVED) for brain-tumour "
        "segmentation and modality completion, in TensorFlow 2 / Keras 3"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["hved_tf", "hved_tf.*"]),
    # The quality benchmark's record of the demo recipe (hved_tf.training.quality_record).
    package_data={"hved_tf.training": ["quality_record.json"]},
    install_requires=[
        "tensorflow>=2.16",
        # 3.15.1 carries the 2025-2026 fixes of safe-mode loading and of HDF5 weights files
        # (arbitrary code through crafted .keras / .h5 files); full models load in safe mode.
        "keras>=3.15.1",
        # TensorBoard is no longer pulled in by tensorflow; training writes its events.
        "tensorboard>=2.16",
        "numpy>=1.24",
        "scipy>=1.10",
        "nibabel>=5.0",
        "scikit-image>=0.21",
        # Figures (predict --figure, evaluate --figures, TensorBoard images): labelled grids with
        # titles, a legend and colour bars, which matplotlib, the plotting library of the field,
        # draws far better than pixel arrays assembled by hand.
        "matplotlib>=3.7",
        "absl-py>=1.4",
        # The demo's anatomical phantoms are built on the MNI ICBM152 2009 template and its grey-
        # and white-matter maps, which nilearn's wheel bundles: real anatomy offline, read from
        # the installed package at run time (never copied into this repository).
        "nilearn>=0.10",
    ],
    # The commands (each also runs as `python -m hved_tf.<module>`).
    entry_points={"console_scripts": [
        "hved-train=hved_tf.train:PROGRAM.main",
        "hved-prepare=hved_tf.prepare:PROGRAM.main",
        "hved-predict=hved_tf.predict:PROGRAM.main",
        "hved-evaluate=hved_tf.evaluate:PROGRAM.main",
        "hved-export=hved_tf.export:PROGRAM.main",
        "hved-serve-client=hved_tf.serve_client:PROGRAM.main",
        "hved-convert=hved_tf.convert_checkpoint:PROGRAM.main",
    ]},
    extras_require={
        # hved-serve-client (hved_tf.serving.client) builds TF Serving's PredictRequest protos
        # and gRPC stubs with Google's own package rather than hand-written protos; the tests
        # run it against a gRPC test double.
        "serving": ["tensorflow-serving-api>=2.16"],
        # --lesion_protocol brats2025: the BraTS 2025/2026 instance-wise scores through
        # panoptica (Apache-2.0), the library the official brats-evaluation package is built
        # on, rather than our own instance matching. It needs numpy < 2.3.
        "brats": ["panoptica>=2.1.7,<3"],
        # import-linter checks the package's layering contract (.importlinter) from the test
        # suite: a well-kept tool for exactly that, rather than our own import-graph walker
        # (before 2.7: later versions need rich >= 14, panoptica rich < 14). brats-evaluation,
        # the official BraTS 2025/2026 scorer (AGPL-3.0), is run by one test only, to check
        # that our brats2025 numbers equal its own; hved_tf never imports it.
        # mypy (MIT) type-checks the numerical and inference packages from the test suite
        # (mypy.ini): the field's standard checker, rather than annotations nobody verifies.
        # pytest-xdist (MIT) runs the suite in two processes (-n 2): most of a test's time is
        # single-threaded Python (tracing, graph building), so a second worker uses the second
        # core; pytest's own plugin for it, rather than splitting the suite by hand.
        "test": ["pytest>=7", "pytest-xdist>=3.5", "tensorflow-serving-api>=2.16",
                 "import-linter>=2.1,<2.7", "panoptica>=2.1.7,<3", "brats-evaluation==0.0.10",
                 "mypy>=1.10"],
    },
)
