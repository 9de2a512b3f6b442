"""Settings are declared once: a field of a config dataclass is a flag of every command that uses
the config, in --help, in the generated reference and in the run config (hved_tf.settings,
hved_tf.config.flagdefs)."""
import dataclasses
import json

import pytest
from absl import flags as absl_flags

from conftest import tool_module
from hved_tf.cli import Program
from hved_tf.config import DataConfig, TrainConfig, flagdefs
from hved_tf.config.stored import migrated
from hved_tf.settings import check_fields, flags_of, section, setting


def _reference_module():
    return tool_module("tools/dev/flags_reference.py")


def _with_new_setting():
    """TrainConfig with one more data setting, declared as any other is."""
    data = dataclasses.make_dataclass(
        "DataWithKnob", [("new_knob", int, setting(7, "A setting added for this test.",
                                                   check=lambda n, v: None))],
        bases=(DataConfig,))
    return dataclasses.make_dataclass(
        "TrainWithKnob", [("data", data, section(data, "data"))], bases=(TrainConfig,))


def test_a_new_field_is_a_flag_in_help_reference_and_run_config(capsys, tmp_path):
    config_class = _with_new_setting()
    seen = {}
    program = Program(config_class, lambda config: seen.update(config=config), name="train",
                      doc="A test program.")
    assert program.call(["--help"]) == 0
    help_text = capsys.readouterr().out
    assert "--new_knob" in help_text and "A setting added for this test. [default: 7]" in \
        help_text
    markdown = _reference_module().program_section("train", program)
    assert "| `--new_knob` | 7 | A setting added for this test. |" in markdown
    assert program.call(["--new_knob=3", f"--run_dir={tmp_path / 'r'}",
                         "--patch=32,32,32"]) == 0
    config = seen["config"]
    assert config.data.new_knob == 3
    assert config.to_dict()["data"]["new_knob"] == 3
    (tmp_path / "run_config.json").write_text(json.dumps(config.to_dict()))
    back = config_class.from_dict(json.loads((tmp_path / "run_config.json").read_text()))
    assert back.data.new_knob == 3


def test_flags_come_from_the_fields_only():
    # every flag of hved-train is a field of TrainConfig (or the command's --retest), and each
    # field with a help text is a flag
    names = [f.name for f in flags_of(TrainConfig)]
    assert len(names) == len(set(names))
    assert {"patch", "data_root", "model", "rotation", "intensity_scale", "dice_weight",
            "weight_decay", "validation_window"} <= set(names)
    assert "seed" in names and "cycle_length" not in names    # a field without help: no flag
    assert not any(name in ("window", "root", "scale_shift", "rotation_degrees")
                   for name in names)


def test_build_converts_and_names_the_flag():
    before = set(absl_flags.FLAGS)
    flagdefs.define(TrainConfig)
    try:
        absl_flags.FLAGS(["t", "--patch=48,48,32", "--pixdim=1,1,2.5", "--noise=0.5,0.2"])
        config = flagdefs.build(TrainConfig, absl_flags.FLAGS)
        assert config.pipeline.window == (48, 48, 32)
        assert config.data.pixdim == (1.0, 1.0, 2.5)
        assert config.pipeline.intensity.noise == (0.5, 0.2)
        assert config.validation_window == "patch"
        absl_flags.FLAGS.unparse_flags()
        absl_flags.FLAGS(["t", "--pixdim=1,x,1"])
        with pytest.raises(ValueError, match="--pixdim must be numbers separated by commas"):
            flagdefs.build(TrainConfig, absl_flags.FLAGS)
    finally:
        absl_flags.FLAGS.unparse_flags()
        for name in set(absl_flags.FLAGS) - before:
            delattr(absl_flags.FLAGS, name)


def test_checks_name_the_flag_not_the_field():
    @dataclasses.dataclass
    class Example:
        size: int = setting(1, "A size.", flag="patch_size", check=lambda n, v: (
            None if v > 0 else (_ for _ in ()).throw(ValueError(f"--{n} must be > 0"))))
        kind: str = setting("a", "A kind.", choices=("a", "b"))

    check_fields(Example())
    with pytest.raises(ValueError, match="--patch_size must be > 0"):
        check_fields(Example(size=0))
    with pytest.raises(ValueError, match="--kind must be one of a, b, got 'c'"):
        check_fields(Example(kind="c"))
    with pytest.raises(TypeError, match="unknown colour"):
        setting(1, "x", colour="red")
    with pytest.raises(TypeError, match="tuple"):
        setting([1], "x")


def test_validate_returns_a_checked_copy_and_leaves_the_original():
    config = TrainConfig(validation_subsets=("t1c", "flair"))
    checked = config.validate()
    assert checked.validation is not None and config.validation is None
    assert checked.validation_subsets == ("T1c", "FLAIR")
    assert config.validation_subsets == ("t1c", "flair")


def test_old_run_configs_migrate_through_the_one_table():
    flat = {"patch": [64, 64, 64], "rotation_degrees": 0.0,
            "optim": {"learning_rate": 1e-3, "kl_weight": 0.2, "weight_decay": 1e-4},
            "validation": {"window": None, "fallback_window": [64, 64, 64],
                           "class_weights": [], "tta_axes": []},
            "test_protocol": "default"}
    out = migrated(flat)
    assert out["pipeline"] == {"window": [64, 64, 64], "rotation_degrees": 0.0,
                               "volume_padding": 0, "spatial_augmentation": "window"}
    assert out["optim"]["loss"] == {"kl": 0.2, "decay_scale": 1e-4}
    assert out["validation"] == {"window": None, "tta_axes": [], "tta": False}
    assert out["test_protocol"] == "paper"
    assert flat["patch"] == [64, 64, 64]                  # the input is left as it was


@pytest.mark.parametrize("config_class", ["PredictConfig", "EvaluateConfig"])
def test_a_command_config_checks_its_protocol_section(config_class):
    from hved_tf import config as cfg

    make = getattr(cfg, config_class)
    with pytest.raises(ValueError, match="--protocol must be one of"):
        make(protocol=cfg.ProtocolChoice(name="nope")).validate()
    with pytest.raises(ValueError, match="--weights must be one of best, final"):
        make(protocol=cfg.ProtocolChoice(weights="worst")).validate()
    assert make().validate().protocol == cfg.ProtocolChoice()
