"""The configuration of each inference command: what it is given and what it writes, one
object per command (`PredictConfig`, `EvaluateConfig`), beside the `InferenceOptions` (how
windows and samples are run) and `GridOptions` (how files reach the model's grid) they share."""
from __future__ import annotations

import dataclasses

from hved_tf.config.checks import choice
from hved_tf.config.inference import GridOptions
from hved_tf.config.vocabulary import CONVENTIONS, PROTOCOLS, OLD_PROTOCOL_NAMES, WEIGHTS


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """What predict writes, and how a subject's files reach the model (`hved-predict`'s flags
    but the model and the inputs)."""
    label_convention: str = ""         # of seg.nii.gz; "": the dataset layout's (files: brats2018)
    synth_all: bool = False            # synth_<MODALITY> for all four, not only the missing
    probabilities: bool = False        # prob_<class>.nii.gz
    figure: bool = False               # figure.png
    overwrite: bool = False            # replace an earlier set of outputs
    grid: GridOptions = GridOptions()
    outputs_on_each_grid: bool = False  # seg_on_<MODALITY>.nii.gz on each input's own grid

    def convention_for(self, subject):
        return self.label_convention or subject.label_convention

    def validate(self):
        if self.label_convention:
            choice("label_convention", self.label_convention, CONVENTIONS)
        self.grid.validate()
        return self


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """What evaluate scores and writes (`hved-evaluate`'s flags but the inference settings):
    the models (run folders, .keras files or exports), ensembles ("NAME=PATH,PATH"),
    segmentations on disk (`hved_tf.evaluation.app.Predictions`), the subjects (`data_root`,
    `split`; empty: the first model's held-out test subjects) and how they are scored."""
    out_dir: str
    models: tuple = ()
    ensembles: tuple = ()
    predictions: object = None
    data_root: str = ""
    split: str = ""
    subsets: tuple = ("all",)
    cache_dir: str = ""
    hist_file: str = ""                # landmarks when a model folder has none
    figures: int = 0                   # PNG panels of the first N subjects
    overwrite: bool = False
    weights: str = "best"
    protocol: str = "paper"
    lesion_protocol: str = ""          # "": the protocol's
    table_metrics: tuple = ()          # "": the protocol's
    grid: GridOptions = GridOptions()

    def validate(self):
        if isinstance(self.figures, bool) or not isinstance(self.figures, int) \
                or self.figures < 0:
            raise ValueError(f"--figures must be an integer >= 0, got {self.figures!r}.")
        choice("weights", self.weights, WEIGHTS)
        choice("protocol", self.protocol, PROTOCOLS + tuple(OLD_PROTOCOL_NAMES))
        self.grid.validate()
        return self
