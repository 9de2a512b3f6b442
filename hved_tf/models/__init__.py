"""Models of hved_tf and their one entry point, `build_model(name, **options)`.

Names: "u_hved" (UHVED), "u_hemis" (UHeMIS), "unet" (SubsetUNet, option `subset`),
"hemis" (HeMIS, 2-D). Options default to the original release (base width 8, 4 levels,
4 classes). Unknown names or options raise ValueError listing what is accepted.
"""
from __future__ import annotations

import inspect
from typing import Any

from hved_tf.models.base import HeteroModalModel
from hved_tf.models.contract import Capabilities, total_pooling
from hved_tf.models.hemis import HeMIS, UHeMIS
from hved_tf.models.hved import UHVED
from hved_tf.models.unet import SubsetUNet

# The one list of model names: flags, configs, loading and reports read it.
MODELS = {cls.kind: cls for cls in (UHVED, UHeMIS, SubsetUNet, HeMIS)}

_COMMON_OPTIONS = ("num_classes", "loss_weights", "subset_probabilities",
                   "dice_numerator_epsilon", "seed", "name", "dtype")


def model_options(name: str) -> tuple[str, ...]:
    """The options a model takes.

    Args:
        name: a name of `MODELS`.

    Returns:
        The keyword arguments `build_model(name, ...)` accepts.
    """
    cls = _model_class(name)
    params = [p for p in inspect.signature(cls.__init__).parameters
              if p not in ("self", "kwargs")]
    return tuple(dict.fromkeys(params + list(_COMMON_OPTIONS)))


def pooling_factor(name: str, **options: Any) -> int:
    """The factor every spatial size must divide into, known without building the model.

    Args:
        name: a name of `MODELS`.
        **options: of `build_model` (`levels` counts).

    Returns:
        `capabilities.multiple` of `build_model(name, **options)`.
    """
    parameters = inspect.signature(_model_class(name).__init__).parameters
    if "levels" not in parameters:
        return 1
    return total_pooling(options.get("levels", parameters["levels"].default))


def _model_class(name):
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}: expected one of {', '.join(MODELS)}.")
    return MODELS[name]


def build_model(name: str, **options: Any) -> HeteroModalModel:
    """A model by name, built (its weights created).

    Args:
        name: a name of `MODELS`.
        **options: any of `model_options(name)`.

    Returns:
        The model.

    Raises:
        ValueError: an unknown name or option.
    """
    cls = _model_class(name)
    allowed = model_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"Unknown option(s) {unknown} for model {name!r}: accepted options are "
                         f"{', '.join(allowed)}.")
    model = cls(**options)
    model.build()
    return model


__all__ = ["build_model", "model_options", "pooling_factor", "MODELS", "UHVED", "UHeMIS", "SubsetUNet", "HeMIS",
           "HeteroModalModel", "Capabilities"]
