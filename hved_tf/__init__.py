"""hved_tf: U-HVED (Dorent et al., MICCAI 2019) in TensorFlow 2 / Keras 3.

Importing the package turns on TensorFlow's oneDNN CPU kernels (TF_ENABLE_ONEDNN_OPTS=1) unless
the environment already says otherwise or TensorFlow is already loaded. TensorFlow 2.21 enables
them by default only on some CPUs; on an AMD EPYC (Zen 3, AVX2, no AVX-512) it does not, and
there a U-HVED training step at 48^3 took 6.15 s without them and 1.10 s with them
(`TF_ENABLE_ONEDNN_OPTS=1 python -m tools.benchmarks.speed model --models u_hved --sizes 48`).
Set TF_ENABLE_ONEDNN_OPTS=0 to keep TensorFlow's own kernels.
"""
import os as _os
import sys as _sys

if "tensorflow" not in _sys.modules:
    _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
