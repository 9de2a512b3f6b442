"""Every file in configs/ parses and validates; bad flags are clear errors."""
import json

import pytest
from absl import flags as absl_flags

from conftest import REPO
from hved_tf.config import TrainConfig, flagdefs
from hved_tf.training.app import check_run_dir


@pytest.fixture
def parse(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    fv = absl_flags.FLAGS
    before = set(fv)
    if "data_root" not in fv:
        flagdefs.define(TrainConfig)
    added = set(fv) - before       # removed afterwards: other programs' tests define their own

    def _parse(*args):
        fv.unparse_flags()
        fv(["train", *args])
        try:
            return flagdefs.build(TrainConfig, fv).validate()
        finally:
            fv.unparse_flags()
    yield _parse
    fv.unparse_flags()
    for name in added:
        delattr(fv, name)


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs").glob("*.cfg")))
def test_every_config_validates(parse, tmp_path, name):
    config = parse(f"--flagfile=configs/{name}", f"--data_root={tmp_path}")
    assert isinstance(config, TrainConfig)
    if name == "brats18.cfg":
        assert config.patch == (112, 112, 112) and config.steps == 60000
        assert config.pipeline.windows_per_volume == 32
        assert config.pipeline.scaling == pytest.approx(0.1)
        assert config.optim.lr_decay_steps == 10000 and config.optim.lr_decay_factor == 0.25
        assert (config.optim.loss.kl, config.optim.loss.recon) == (0.1, 0.1)
        assert not config.prior_correction              # the paper's: no correction
    if name == "unet_subset.cfg":
        assert config.model.subset == "T1c+FLAIR"
    if name == "demo.cfg":
        config = parse(f"--flagfile=configs/{name}")
        assert config.data.root == "demo"
        assert config.test_samples == 10 and config.validation.num_samples == 1
        assert config.prior_correction and config.pipeline.sampler == "balanced"
        assert (config.intra_op_threads, config.inter_op_threads) == (1, 2)
    back = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert back == config


def test_the_demo_is_the_recipe_its_quality_record_describes(parse):
    # The main job prints where its run stands only when its configuration is the record's
    # recipe: a setting added to the configuration must be added to the record too.
    from hved_tf.training.quality_record import comparable, read_record
    record = read_record()
    assert record is not None, "hved_tf/training/quality_record.json is missing"
    config = comparable(parse("--flagfile=configs/demo.cfg").to_dict())
    assert config == record["config"]


@pytest.mark.parametrize("args,match", [
    (["--steps=0"], "--steps must be a positive integer"),
    (["--patch=1,2"], "--patch must be three integers"),
    (["--patch=a,b,c"], "--patch must be integers"),
    (["--model=vnet"], "--model must be one of"),
    (["--model=unet", "--subset=T1+DWI"], "--subset: Unknown modality"),
    (["--model=unet"], "needs --subset"),
    (["--kl_variant=both"], "--kl_variant must be one of"),
    (["--data_root=/nonexistent/brats"], "is not a folder"),
    (["--validation_subsets=T9"], "--validation_subsets"),
    (["--hist_file=/nonexistent/hist.txt"], "does not exist"),
    (["--validation_window=whole"], "--validation_window must be 'patch' or 'auto' or three"),
    (["--validation_window=4,4,4"], "--validation_window must be three integers >= 8"),
    (["--test_samples=0"], "--test_samples must be a positive integer"),
    (["--intra_op_threads=-1"], "--intra_op_threads must be an integer >= 0"),
    (["--inter_op_threads=-2"], "--inter_op_threads must be an integer >= 0"),
])
def test_bad_values(parse, args, match):
    with pytest.raises(ValueError, match=match):
        parse(*args)


def test_validation_window(parse):
    """patch (the default): the training patch's windows; auto: the whole volume (window None)
    with the patch as fallback; sizes as given; each survives the run_config round trip."""
    assert parse("--patch=48,48,48").validation.window == (48, 48, 48)
    auto = parse("--patch=48,48,48", "--validation_window=auto").validation
    assert auto.window is None and parse("--patch=48,48,48").patch == (48, 48, 48)
    assert (auto.overlap, auto.num_samples) == (0.0, 1)
    sized = parse("--patch=48,48,48", "--validation_window=64,64,32")
    assert sized.validation.window == (64, 64, 32)
    assert TrainConfig.from_dict(json.loads(json.dumps(sized.to_dict()))) == sized


def test_unknown_flag_exits_non_zero_before_work(tmp_path, cli):
    run = cli("train", "--no_such_flag=1", f"--run_dir={tmp_path}/r")
    assert run.code == 2 and "no_such_flag" in run.err, run
    run = cli("train", "--steps=-3", f"--run_dir={tmp_path}/r")
    assert run.code == 2 and "--steps must be a positive integer" in run.err, run
    assert not (tmp_path / "r").exists()


def test_run_dir_of_another_model_is_refused(parse, tmp_path):
    config = parse(f"--run_dir={tmp_path}")
    (tmp_path / "run_config.json").write_text(json.dumps(config.to_dict()))
    check_run_dir(tmp_path, config)                     # same model: fine
    other = parse(f"--run_dir={tmp_path}", "--model=u_hemis")
    with pytest.raises(ValueError, match="holds the checkpoints of another model"):
        check_run_dir(tmp_path, other)


@pytest.mark.parametrize("line,expected", [
    ("--stpes=10", "Unknown command line flag 'stpes'. Did you mean: steps"),
    ("--steps=ten", "flag --steps=ten: invalid literal for int() with base 10: 'ten' "
                    "(expected an integer)"),
    ("--learning_rate=fast", "(expected a number)"),
    ("--patch=32,x,32", "--patch must be integers separated by commas, got '32,x,32'"),
    ("--steps=0", "--steps must be a positive integer, got 0"),
])
def test_a_bad_flagfile_line_names_the_file_the_flag_and_the_type(tmp_path, capsys, line,
                                                                   expected):
    from hved_tf.train import PROGRAM

    flagfile = tmp_path / "my.cfg"
    flagfile.write_text(f"--data_root=demo\n{line}\n")
    assert PROGRAM.call([f"--flagfile={flagfile}", f"--run_dir={tmp_path / 'r'}"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"error: {flagfile}: "), error
    assert expected in error[0]
    assert not (tmp_path / "r").exists()


def test_a_bad_value_given_on_the_command_line_names_no_flagfile(tmp_path, capsys):
    from hved_tf.train import PROGRAM

    flagfile = tmp_path / "my.cfg"
    flagfile.write_text("--data_root=demo\n--steps=5\n")
    assert PROGRAM.call([f"--flagfile={flagfile}", "--steps=0",
                         f"--run_dir={tmp_path / 'r'}"]) == 2
    assert capsys.readouterr().err.strip() == "error: --steps must be a positive integer, got 0."


def test_an_unknown_key_in_a_run_config_is_named_with_the_closest(tmp_path):
    from hved_tf.inference.loading import load_trained

    saved = TrainConfig().to_dict()
    saved["pipeline"]["windw"] = saved["pipeline"].pop("window")
    with pytest.raises(ValueError, match=r"unknown setting pipeline\.windw; did you mean "
                                         r"pipeline\.window\?"):
        TrainConfig.from_dict(saved)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run_config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=r"run_config\.json is not a readable run config "
                                         r"\(unknown setting pipeline\.windw; did you mean"):
        load_trained(run)
    top = {**TrainConfig().to_dict(), "stpes": 3}
    with pytest.raises(ValueError, match=r"unknown setting stpes; did you mean steps\?"):
        TrainConfig.from_dict(top)
