"""The configuration of each inference command, one object per command: `PredictConfig`,
`EvaluateConfig`, `ExportConfig`. Each is its command's flags (hved_tf.settings: the fields
are the flags), with the sections they share: the `InferenceOptions` (how windows and samples
are run), the `GridOptions` (how files reach the model's grid), the `ProtocolChoice` and the
`ModalityFiles` of one patient."""
from __future__ import annotations

import dataclasses

from hved_tf.config.checks import non_negative, one_of
from hved_tf.config.inference import GridOptions, InferenceOptions
from hved_tf.config.vocabulary import (CONVENTIONS, LESION_PROTOCOLS, PREDICTION_CONVENTIONS,
                                       PROTOCOLS, WEIGHTS)
from hved_tf.modalities import MODALITIES
from hved_tf.settings import check_fields, section, setting

_INPUTS = "inputs (one way: modality files, one subject's folder, or a dataset)"
_PREDICTIONS = "segmentations on disk (another tool's, or predict's)"


def _weights(name, value):
    if value:
        one_of(WEIGHTS)(name, value)


@dataclasses.dataclass(frozen=True)
class ProtocolChoice:
    """The evaluation protocol (hved_tf.protocols) and which weights of a run folder."""
    name: str = setting("paper", "paper: the inference flags above, scored as this "
                        "repository's Table 1; original: the release's evaluation (128^3 "
                        "windows, border 10, later windows overwrite earlier ones, one random "
                        "z draw, the final weights), replacing them; brats: lesion-wise Dice "
                        "first, HD95 374 for an empty region; brats2025: the same with the "
                        "BraTS 2025 instance-wise scores (detection F1, PQ); rfnet: ETpp (500 "
                        "voxels) and raw beside post-processed Dice. The protocol table of "
                        "docs/how-to/predict-and-evaluate.md says exactly.", flag="protocol",
                        choices=PROTOCOLS)
    weights: str = setting("", f"Of a run folder: {' | '.join(WEIGHTS)} (default: best, or "
                           "final with --protocol=original).", check=_weights)


@dataclasses.dataclass(frozen=True)
class ModalityFiles:
    """One patient's sequence files (any non-empty subset of the four)."""
    t1: str = setting("", "The T1 NIfTI file, if the patient has one.")
    t1c: str = setting("", "The T1c NIfTI file, if the patient has one.")
    t2: str = setting("", "The T2 NIfTI file, if the patient has one.")
    flair: str = setting("", "The FLAIR NIfTI file, if the patient has one.")

    def by_modality(self):
        """{modality: path} ("" where a sequence is not given)."""
        return {m: getattr(self, m.lower()) for m in MODALITIES}


def _segmenting_checked(config):
    """A checked copy of a command config that segments subjects (predict, evaluate): its own
    settings, its protocol's, then its grid and inference sections."""
    check_fields(config)
    check_fields(config.protocol)
    return dataclasses.replace(config, grid=config.grid.validate(),
                               inference=config.inference.validate())


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """`hved-predict`: the model, the inputs, how they are segmented and what is written."""
    models: tuple = setting((), "A training run folder, a .keras file or an export; repeat for "
                            "an ensemble (probabilities averaged).", flag="model", multi=True,
                            required=True, group="model")
    hist_file: str = setting("", "Landmarks (hist.txt) when the model folder has none.",
                             group="model")
    files: ModalityFiles = section(ModalityFiles, _INPUTS)
    subject_dir: str = setting("", "One subject's folder (any supported layout).",
                               group=_INPUTS)
    data_root: str = setting("", "A dataset folder: every subject is segmented.",
                             group=_INPUTS)
    inference: InferenceOptions = section(InferenceOptions)
    grid: GridOptions = section(GridOptions)
    protocol: ProtocolChoice = section(ProtocolChoice, "protocol")
    out_dir: str = setting("", "Output folder (one subfolder per subject for a dataset).",
                           required=True, group="output")
    label_convention: str = setting("", f"{' | '.join(CONVENTIONS)}; default: the dataset "
                                    "layout's, brats2018 for files.",
                                    check=lambda n, v: v and one_of(CONVENTIONS)(n, v),
                                    group="output")
    synth_all: bool = setting(False, "Synthesise all four sequences, not only the missing "
                              "ones.", group="output")
    probabilities: bool = setting(False, "Also write prob_<class>.nii.gz.", group="output")
    figure: bool = setting(False, "Also write figure.png (three planes through the tumour).",
                           group="output")
    outputs_on_each_grid: bool = setting(False, "For sequences on different grids: also "
                                         "seg_on_<MODALITY>.nii.gz on each input's own grid "
                                         "(the outputs lie on the reference grid).",
                                         group="output")
    overwrite: bool = setting(False, "Replace earlier results in --out_dir.", group="output")

    def convention_for(self, subject):
        return self.label_convention or subject.label_convention

    def validate(self):
        """A checked copy."""
        return _segmenting_checked(self)


@dataclasses.dataclass(frozen=True)
class PredictionsSource:
    """Segmentations on disk to score beside the models (`hved_tf.evaluation.files`); off
    while `folder` is empty."""
    folder: str = setting("", "A folder of <subject>.nii.gz or <subject>/seg.nii.gz files, "
                          "scored against --data_root's labels (with or without --model).",
                          flag="predictions")
    name: str = setting("", "Their column in the tables (default: the folder's name).",
                        flag="predictions_name")
    subset: str = setting("T1+T1c+T2+FLAIR", "The sequences the tool was given (their row in "
                          "table1.md).", flag="predictions_subset")
    convention: str = setting("auto", "Their labels: auto (from the values), brats2018 "
                              "(0/1/2/4), brats2023 (0/1/2/3).", flag="predictions_convention",
                              choices=PREDICTION_CONVENTIONS)
    missing_as_empty: bool = setting(False, "Score subjects without a file as an empty "
                                     "prediction (else they are refused, listed).")


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """`hved-evaluate`: the models (run folders, .keras files or exports), ensembles
    ("NAME=PATH,PATH"), segmentations on disk, the subjects (`data_root`, `split`; empty: the
    first model's held-out test subjects), how they are segmented and scored, what is written."""
    models: tuple = setting((), "A run folder or .keras file; repeat to compare.", flag="model",
                            multi=True, group="models")
    ensembles: tuple = setting((), "NAME=PATH,PATH[,...]: run folders (or .keras files) "
                               "averaged as one model named NAME in the tables; repeatable.",
                               flag="ensemble", multi=True, group="models")
    hist_file: str = setting("", "Landmarks when a model folder has none.", group="models")
    data_root: str = setting("", "Dataset folder (default: the first run's test split).",
                             group="data")
    split: str = setting("", "With --data_root: the release's split CSV (its test part) or a "
                         "file of subject ids.", group="data")
    subsets: tuple = setting(("all",), "'all' or subset codes, e.g. T1c,T1c+FLAIR.",
                             group="data")
    lesion_protocol: str = setting("", "Lesion-wise Dice and HD95 as the BraTS challenge of "
                                   "that year ranks them (2023/2024: dilation 3; lesions of at "
                                   "most 50, or 20 and 10 for ET, voxels left out; 2025: "
                                   "panoptica's one-to-one matched instances, with detection "
                                   "F1 and PQ, needs the [brats] extra), or none; default: the "
                                   "protocol's (brats2023).", choices=LESION_PROTOCOLS,
                                   group="data")
    cache_dir: str = setting("", "Preprocessed-subject cache (default: the run's, or "
                             "<out_dir>/../cache).", group="data")
    predictions: PredictionsSource = section(PredictionsSource, _PREDICTIONS)
    inference: InferenceOptions = section(InferenceOptions)
    grid: GridOptions = section(GridOptions)
    protocol: ProtocolChoice = section(ProtocolChoice, "protocol")
    out_dir: str = setting("", "Output folder.", required=True, group="output")
    figures: int = setting(0, "PNG panels for the first N subjects.", check=non_negative(),
                           group="output")
    table_metrics: tuple = setting((), "Columns of table1.md: dice, dice_pp (post-processed), "
                                   "lesion_dice, lesion_dice_pp, and with brats2025 "
                                   "detection_f1, pq (default: the protocol's).",
                                   group="output")
    overwrite: bool = setting(False, "Replace earlier results in --out_dir.", group="output")

    def validate(self):
        """A checked copy."""
        return _segmenting_checked(self)


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """`hved-export`: the trained model, the export's frozen inference settings, where."""
    model: str = setting("", "A training run folder or a .keras file.", required=True,
                         group="model")
    hist_file: str = setting("", "Landmarks (hist.txt) when the model folder has none.",
                             group="model")
    inference: InferenceOptions = section(InferenceOptions)
    export_dir: str = setting("", "The model's base folder, e.g. models/hved.", required=True,
                              group="output")
    version: int | None = setting(None, "Version folder (default: one more than the last).",
                                  kind=int, group="output")
    label_convention: str = setting("brats2018", "Label values of seg_labels.",
                                    choices=CONVENTIONS, group="output")

    def validate(self):
        """A checked copy (exports are float32: TF Serving runs them on any hardware)."""
        check_fields(self)
        if self.inference.precision != "float32":
            raise ValueError("Exports are float32 (TF Serving runs them on any hardware): drop "
                             "--inference_precision, or use it with predict and evaluate.")
        return dataclasses.replace(self, inference=self.inference.validate())
