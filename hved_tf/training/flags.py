"""absl flags of the training application, and their translation into a `TrainConfig`.

Defaults are the paper's recipe (configs/brats18.cfg spells them out); `--flagfile
configs/demo.cfg` gives the CPU demo. Choices come from the vocabularies of `hved_tf.config`
(and the model registry), so the flags, the validation and the code share one list each.
"""
from __future__ import annotations

from absl import flags

from hved_tf import config as cfg
from hved_tf.flaggroups import flag_group

FLAGS = flags.FLAGS


def _define_data():
    with flag_group("data"):
        flags.DEFINE_string("data_root", cfg.DEMO_ROOT,
                            "BraTS folder (layout detected), or 'demo' for generated phantoms.")
        flags.DEFINE_string("split", "", "Split file: the release's CSV, or one id per line "
                            "(train).")
        flags.DEFINE_string("naming", "", "The release's corresponding_naming.csv, to map its "
                            "ids.")
        flags.DEFINE_integer("fold", 0, "Without --split: fold of a seeded 70/10/20 split.")
        flags.DEFINE_integer("folds", 3, "Without --split: number of folds.")
        flags.DEFINE_string("cache_dir", "", "Preprocessed-subject cache (default: "
                            "<run_dir>/../cache).")
        flags.DEFINE_string("hist_file", "", "NiftyNet hist.txt landmarks; empty: train them.")
        flags.DEFINE_integer("demo_subjects", 24, "Phantoms generated for --data_root=demo.")
        flags.DEFINE_enum("demo_phantoms", "ellipsoid", list(cfg.DEMO_PHANTOMS), "The demo's "
                          "phantoms: anatomical (the MNI152 template with a grown tumour, from "
                          "nilearn) or ellipsoid (fast, for tests).")
        flags.DEFINE_float("demo_voxel_mm", 2.0, "Voxel size of the anatomical phantoms (mm).")
        flags.DEFINE_list("demo_shape", ["64", "64", "64"], "Size X,Y,Z of the ellipsoid "
                          "phantoms.")
        flags.DEFINE_enum("on_bad_subject", "skip", list(cfg.ON_BAD_SUBJECT),
                          "A subject that cannot be read: skip it (listed) or stop.")
        flags.DEFINE_integer("landmark_subjects", 0, "Training subjects the histogram landmarks "
                             "are trained on (0: all of them); unused with --hist_file.")
        flags.DEFINE_enum("cache_dtype", "float16", list(cfg.CACHE_DTYPES), "The prepared "
                          "images in the cache: float16 (half the bytes) or float32.")
        flags.DEFINE_integer("prepare_workers", 1, "Processes preparing subjects into the cache "
                             "(also: python -m hved_tf.prepare).")
        flags.DEFINE_list("pixdim", [], "Voxel size X,Y,Z (mm) the model is trained at: inputs "
                          "of another are resampled to it (cubic; labels nearest), here and at "
                          "inference. Empty: the demo phantoms' own, else 1,1,1 (the release's).")


def _define_model():
    with flag_group("model"):
        flags.DEFINE_string("model", "u_hved", " | ".join(cfg.MODEL_NAMES) + ".")
        flags.DEFINE_string("subset", "", "For --model=unet: its modalities, e.g. T1c+FLAIR.")
        flags.DEFINE_integer("base_filters", 8, "Base width F.")
        flags.DEFINE_integer("levels", 4, "Scales of the U-Net.")
        flags.DEFINE_string("kl_variant", "original", " | ".join(cfg.KL_VARIANTS)
                            + " (original: the released code's).")
        flags.DEFINE_integer("seed", 0, "Seed of the data stream, subset draws and z samples.")


def _define_optimisation():
    with flag_group("optimisation"):
        flags.DEFINE_integer("steps", 60_000, "Optimiser steps.")
        flags.DEFINE_float("learning_rate", 1e-3, "Adam's initial learning rate.")
        flags.DEFINE_float("lr_decay_factor", 0.25, "Multiply the lr by this every "
                           "--lr_decay_steps.")
        flags.DEFINE_integer("lr_decay_steps", 10_000, "Steps between two lr decays.")
        flags.DEFINE_enum("lr_schedule", "step", list(cfg.LR_SCHEDULES), "step: the rate times "
                          "--lr_decay_factor every --lr_decay_steps (the U-HeMIS code's); "
                          "constant: --learning_rate throughout (the released U-HeMIS graph's); "
                          "poly: --learning_rate times (1 - step / --lr_decay_steps)^0.9, zero "
                          "from --lr_decay_steps on (nnU-Net's).")
        flags.DEFINE_float("ema_momentum", 0.0, "Exponential moving average of the weights: "
                           "validation, the test and the final weights use the average (0: off, "
                           "the release's recipe; 0.99-0.999 typical).")
        flags.DEFINE_float("dice_weight", 1.0, "Weight of the Dice loss.")
        flags.DEFINE_float("ce_weight", 1.0, "Weight of the cross-entropy.")
        flags.DEFINE_float("kl_weight", 0.1, "Weight of the KL term (u_hved).")
        flags.DEFINE_float("recon_weight", 0.1, "Weight of the reconstruction MSE (u_hved).")
        flags.DEFINE_float("decay_weight", 1.0, "Weight of the weight-decay term.")
        flags.DEFINE_float("weight_decay", 1e-5, "L2 scale of the weight decay.")
    with flag_group("training windows and augmentation"):
        flags.DEFINE_list("patch", ["112", "112", "112"], "Training window X,Y,Z.")
        flags.DEFINE_integer("batch_size", 1, "Windows per step (global, over all replicas).")
        flags.DEFINE_integer("windows_per_volume", 32, "Windows drawn per visit of a subject.")
        flags.DEFINE_enum("sampler", "uniform", list(cfg.SAMPLERS),
                          "uniform (the release's) | balanced (a class chosen uniformly, a "
                          "window centred on one of its voxels) | foreground (a share "
                          "--foreground_fraction of the windows centred on the tumour, the "
                          "rest uniform).")
        flags.DEFINE_float("foreground_fraction", 0.33, "With --sampler=foreground: the share "
                           "of windows centred on a tumour voxel.")
        flags.DEFINE_list("flip_axes", ["0", "1", "2"], "Axes of random flips (empty: none).")
        flags.DEFINE_float("rotation", 0.0, "Random rotation within ± this many degrees.")
        flags.DEFINE_float("scaling", 0.1, "Random zoom within 1 ± this (per axis with "
                           "--spatial_augmentation=release).")
        flags.DEFINE_integer("volume_padding", 10, "Voxels padded around each volume before "
                             "windows are drawn, as the release did (0: none); release: each "
                             "padded line its line's minimum (images and labels), window: the "
                             "channel minimum and label 0.")
        flags.DEFINE_enum("spatial_augmentation", "release", list(cfg.SPATIAL_AUGMENTATIONS),
                          "release: per visit of a subject, a zoom per axis (cubic) and flips "
                          "of the whole padded volume; window: per window, one isotropic zoom "
                          "(trilinear), rotation and flips.")
        flags.DEFINE_bool("release_label_filtering", False, "With --spatial_augmentation="
                          "release: the release's quirk of smoothing the label volume before "
                          "an antialiased zoom, then truncating it to integers "
                          "(configs/brats18.cfg; docs/explanation/faithfulness.md).")
    with flag_group("intensity augmentation (off by default: the paper's recipe)"):
        flags.DEFINE_list("bias_field", ["0", "0.3"], "Probability, strength: a smooth "
                          "multiplicative field exp(quadratic) per sequence.")
        flags.DEFINE_list("gamma", ["0", "0.3"], "Probability, range of log gamma.")
        flags.DEFINE_list("intensity_scale", ["0", "0.1", "0.1"], "Probability, scale range, "
                          "shift range (whitened units).")
        flags.DEFINE_list("noise", ["0", "0.1"], "Probability, largest std of Gaussian noise.")
        flags.DEFINE_list("blur", ["0", "1.0"], "Probability, largest Gaussian sigma (voxels).")


def _define_validation_and_output():
    with flag_group("validation"):
        flags.DEFINE_integer("validation_every", 1000, "Steps between validations (and "
                             "backups).")
        flags.DEFINE_list("validation_subsets", ["T1+T1c+T2+FLAIR", "T1c", "FLAIR", "T1+T2"],
                          "Modality subsets evaluated at each validation.")
        flags.DEFINE_list("validation_window", ["patch"], "Windows of validation and the "
                          "paper-protocol test: patch (the training patch, the release's), "
                          "auto (the whole cropped volume where it fits, else the patch) or "
                          "X,Y,Z.")
        flags.DEFINE_list("test_subsets", [], "Subsets of the end-of-training test (all: the "
                          "15; empty: --validation_subsets).")
        flags.DEFINE_integer("early_stopping_patience", 0,
                             "Stop after this many validations without improvement (0: never).")
        flags.DEFINE_enum("test_protocol", "paper", list(cfg.PROTOCOLS), "The end-of-training "
                          "test: paper (validation's settings, best weights) or original "
                          "(the release's evaluation, final weights).")
        flags.DEFINE_integer("test_samples", 1, "z draws whose softmax outputs the "
                             "end-of-training test averages (U-HVED; 1: the posterior mean, as "
                             "validation; evaluate's default: 10).")
        flags.DEFINE_bool("prior_correction", False, "Measure how much more often the sampler's "
                          "windows show each class than the training volumes do, save the "
                          "correcting class weights (class_prior.json) and use them in "
                          "validation, the test, evaluate, predict and exports (Bayes' rule "
                          "for a shifted prior; hved_tf.data.class_prior).")
    with flag_group("output"):
        flags.DEFINE_string("run_dir", "runs/demo", "Folder of the run: config, checkpoints, "
                            "logs.")
        flags.DEFINE_integer("keep_checkpoints", 3, "Step checkpoints kept in "
                             "<run_dir>/checkpoints.")
        flags.DEFINE_integer("log_every", 50, "Steps between two training-loss points in "
                             "TensorBoard (and progress lines when not on a terminal).")
        flags.DEFINE_bool("retest", False, "For a finished run: compute the test figures "
                          "again (nothing else is done).")
    with flag_group("distribution, precision and CPU threads"):
        flags.DEFINE_enum("strategy", "default", list(cfg.STRATEGIES), "Distribution strategy.")
        flags.DEFINE_enum("precision", "float32", list(cfg.PRECISIONS), "Keras precision "
                          "policy.")
        flags.DEFINE_integer("intra_op_threads", 0, "CPU threads TensorFlow gives one op (0: "
                             "its choice, the cores); configs/demo.cfg: 1, see there.")
        flags.DEFINE_integer("inter_op_threads", 0, "Ops TensorFlow runs side by side (0: its "
                             "choice, the cores).")


def define_flags():
    """The training flags (defined only when run as a program: tests import this module)."""
    _define_data()
    _define_model()
    _define_optimisation()
    _define_validation_and_output()


def _numbers(name, values, kind=int):
    try:
        return tuple(kind(v) for v in values)
    except (TypeError, ValueError):
        what = "integers" if kind is int else "numbers"
        raise ValueError(f"--{name} must be {what} separated by commas, got "
                         f"{','.join(values)!r}.") from None


def _ints(name, values):
    return _numbers(name, values, int)


def _floats(name, values):
    return _numbers(name, values, float)


def config_from_flags(f=FLAGS):
    """A validated TrainConfig from the parsed flags (ValueError on a bad value)."""
    loss = cfg.LossWeights(dice=f.dice_weight, ce=f.ce_weight, kl=f.kl_weight,
                           recon=f.recon_weight, decay=f.decay_weight,
                           decay_scale=f.weight_decay)
    config = cfg.TrainConfig(
        data=cfg.DataConfig(
            root=f.data_root, split=f.split, naming=f.naming, fold=f.fold, folds=f.folds,
            cache_dir=f.cache_dir, hist_file=f.hist_file, demo_subjects=f.demo_subjects,
            demo_shape=_ints("demo_shape", f.demo_shape), on_bad_subject=f.on_bad_subject,
            demo_phantoms=f.demo_phantoms, demo_voxel_mm=f.demo_voxel_mm,
            landmark_subjects=f.landmark_subjects, cache_dtype=f.cache_dtype,
            prepare_workers=f.prepare_workers, pixdim=_floats("pixdim", f.pixdim)),
        model=cfg.ModelConfig(name=f.model, subset=f.subset, base_filters=f.base_filters,
                              levels=f.levels, kl_variant=f.kl_variant, seed=f.seed),
        optim=cfg.OptimConfig(learning_rate=f.learning_rate, lr_decay_factor=f.lr_decay_factor,
                              lr_decay_steps=f.lr_decay_steps, lr_schedule=f.lr_schedule,
                              ema_momentum=f.ema_momentum, loss=loss),
        pipeline=cfg.PipelineConfig(
            window=_ints("patch", f.patch), windows_per_volume=f.windows_per_volume,
            sampler=f.sampler, foreground_fraction=f.foreground_fraction,
            batch_size=f.batch_size,
            flip_axes=_ints("flip_axes", f.flip_axes), rotation_degrees=f.rotation,
            scaling=f.scaling, volume_padding=f.volume_padding,
            spatial_augmentation=f.spatial_augmentation,
            release_label_filtering=f.release_label_filtering,
            intensity=cfg.IntensityConfig(
                bias_field=_floats("bias_field", f.bias_field), gamma=_floats("gamma", f.gamma),
                scale_shift=_floats("intensity_scale", f.intensity_scale),
                noise=_floats("noise", f.noise), blur=_floats("blur", f.blur))),
        validation=cfg.validation_options(
            _ints("patch", f.patch), cfg.parse_window(f.validation_window, "validation_window",
                                                      ("patch", "auto"))),
        run_dir=f.run_dir, steps=f.steps, validation_every=f.validation_every,
        validation_subsets=tuple(f.validation_subsets), test_subsets=tuple(f.test_subsets),
        early_stopping_patience=f.early_stopping_patience,
        keep_checkpoints=f.keep_checkpoints, strategy=f.strategy, precision=f.precision,
        intra_op_threads=f.intra_op_threads, inter_op_threads=f.inter_op_threads,
        log_every=f.log_every, test_protocol=f.test_protocol, test_samples=f.test_samples,
        prior_correction=f.prior_correction)
    return config.validate()
