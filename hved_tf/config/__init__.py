"""The one configuration tree of hved_tf, and the vocabularies its options take.

`TrainConfig` holds everything a training run is made of, as typed dataclasses that each
check themselves (`validate()` raises ValueError naming the flag and what is expected):

    TrainConfig
      data:       DataConfig        where the subjects come from, split, cache, landmarks
      model:      ModelConfig       which network (a name of the registry) and its options
      optim:      OptimConfig       Adam's rate and schedule, and `loss` (losses.LossWeights)
      pipeline:   PipelineConfig    training windows: size, sampler, augmentation, batch
      validation: InferenceOptions  how validation and the end-of-training test segment
      + the run's own settings (folder, steps, cadence, subsets, checkpoints, strategy, ...)

`InferenceOptions` is also what predict, evaluate and export build from their flags: one
definition and one set of bounds for every entry point. Each vocabulary is defined once here
(or, for the model names and KL variants, in the registry and the losses, read here) and used
by the flags, the validation and the code.

`to_dict` / `from_dict` give the resolved config written into a run folder (run_config.json);
`from_dict` also reads the flat layout of run folders written before the tree existed.
"""
from __future__ import annotations

from hved_tf.config.checks import _positive_int, _sizes, choice  # noqa: F401
from hved_tf.config.inference import (BLENDS, WHOLE_VOLUME_MAX_VOXELS,  # noqa: F401
                                      GridOptions, InferenceOptions, parse_window,
                                      validation_options)
from hved_tf.config.commands import EvaluateConfig, PredictConfig  # noqa: F401
from hved_tf.config.sections import (DataConfig, IntensityConfig, ModelConfig,  # noqa: F401
                                     OptimConfig, PipelineConfig)
from hved_tf.config.train import TrainConfig  # noqa: F401
from hved_tf.config.vocabulary import (  # noqa: F401
    MODEL_NAMES, SAMPLERS, SPATIAL_AUGMENTATIONS, PROTOCOLS, OLD_PROTOCOL_NAMES, WEIGHTS,
    STRATEGIES, PRECISIONS, ON_BAD_SUBJECT, DEMO_PHANTOMS, CACHE_DTYPES, LR_SCHEDULES,
    CONVENTIONS, DEMO_ROOT)
from hved_tf.losses import KL_VARIANTS, LossWeights  # noqa: F401
