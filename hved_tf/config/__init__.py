"""The one configuration tree of hved_tf, and the vocabularies its options take.

Every setting is declared once, as a field of a dataclass (`hved_tf.settings.setting`): its
default, help, flag name, group and check. The commands' flags are generated from them
(`hved_tf.config.flagdefs`), and so is docs/reference/flags.md.

    TrainConfig (train.py)        hved-train, hved-prepare
      data:       DataConfig      where the subjects come from, split, cache, landmarks
      model:      ModelConfig     which network (a name of the registry) and its options
      optim:      OptimConfig     Adam's rate and schedule, and `loss` (losses.LossWeights)
      pipeline:   PipelineConfig  training windows: size, sampler, augmentation, batch
      validation: InferenceOptions  how validation and the end-of-training test segment
    PredictConfig, EvaluateConfig, ExportConfig (commands.py), sharing InferenceOptions and
      GridOptions (inference.py)

`validate()` returns a checked copy or raises one ValueError naming the flag (one check per
kind: checks.py). A run folder keeps its TrainConfig (run_config.json); `TrainConfig.from_dict`
reads every older layout through the one table of stored.py. This module only re-exports.
"""
from __future__ import annotations

from hved_tf.config.checks import choice
from hved_tf.config.commands import (EvaluateConfig, ExportConfig, ModalityFiles,
                                     PredictConfig, PredictionsSource, ProtocolChoice)
from hved_tf.config.inference import (BLENDS, WHOLE_VOLUME_MAX_VOXELS, GridOptions,
                                      InferenceOptions, ModelFacts, parse_window,
                                      validation_options)
from hved_tf.config.sections import (DataConfig, IntensityConfig, ModelConfig, OptimConfig,
                                     PipelineConfig)
from hved_tf.config.train import TrainConfig
from hved_tf.config.vocabulary import (
    CACHE_DTYPES, CONVENTIONS, DEMO_PHANTOMS, DEMO_ROOT, LR_SCHEDULES, MODEL_NAMES,
    OLD_PROTOCOL_NAMES, ON_BAD_SUBJECT, PRECISIONS, PROTOCOLS, SAMPLERS,
    SPATIAL_AUGMENTATIONS, STRATEGIES, WEIGHTS)
from hved_tf.losses import KL_VARIANTS, LossWeights

__all__ = [
    "choice", "EvaluateConfig", "ExportConfig", "ModalityFiles", "PredictConfig",
    "PredictionsSource", "ProtocolChoice", "BLENDS", "WHOLE_VOLUME_MAX_VOXELS", "GridOptions",
    "InferenceOptions", "ModelFacts", "parse_window", "validation_options", "DataConfig", "IntensityConfig",
    "ModelConfig", "OptimConfig", "PipelineConfig", "TrainConfig", "CACHE_DTYPES",
    "CONVENTIONS", "DEMO_PHANTOMS", "DEMO_ROOT", "LR_SCHEDULES", "MODEL_NAMES",
    "OLD_PROTOCOL_NAMES", "ON_BAD_SUBJECT", "PRECISIONS", "PROTOCOLS", "SAMPLERS",
    "SPATIAL_AUGMENTATIONS", "STRATEGIES", "WEIGHTS", "KL_VARIANTS", "LossWeights"]
