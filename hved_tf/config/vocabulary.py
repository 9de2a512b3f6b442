"""The vocabularies the configuration's options take, each defined once (the model names and
KL variants are read from the model registry and the losses)."""
from __future__ import annotations

from hved_tf.modalities import LABEL_CONVENTIONS
from hved_tf.models import MODELS
from hved_tf.preprocessing.normalise import STORAGE_DTYPES

MODEL_NAMES = tuple(MODELS)
SAMPLERS = ("uniform", "balanced", "foreground")
SPATIAL_AUGMENTATIONS = ("release", "window")    # per visit (the release's) | per window
PROTOCOLS = ("paper", "original", "brats", "brats2025", "rfnet")   # hved_tf.protocols
OLD_PROTOCOL_NAMES = {"default": "paper"}
WEIGHTS = ("best", "final")
STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
INFERENCE_PRECISIONS = ("float32", "bfloat16")     # hved_tf.inference.precision
ON_BAD_SUBJECT = ("skip", "fail")
DEMO_PHANTOMS = ("ellipsoid", "anatomical")
CACHE_DTYPES = STORAGE_DTYPES
LR_SCHEDULES = ("step", "constant", "poly")   # ÷ factor every N steps (U-HeMIS code) | constant
#                                              | (1 - t/N)^0.9, zero at N (nnU-Net's)
CONVENTIONS = tuple(LABEL_CONVENTIONS)
DEMO_ROOT = "demo"
PREDICTION_CONVENTIONS = ("auto", *LABEL_CONVENTIONS)   # another tool's segmentation files
LESION_PROTOCOLS = ("", "brats2023", "brats2024", "brats2025", "none")   # "": the protocol's
