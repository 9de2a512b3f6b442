"""Fault matrix, flags: a value out of range is refused by name, before any model is loaded or
any data prepared, with the same bounds in predict, evaluate and export (one validation)."""
import pytest

from faults import FAST, case_files, cli, modality_flags, refused  # noqa: F401

INFERENCE_CASES = [
    ("--overlap=1.0", "--overlap"),
    ("--overlap=-0.9", "--overlap"),
    ("--samples=0", "--samples"),
    ("--window=8,8", "--window"),
    ("--window=4,4,4", "--window"),
    ("--window=big", "--window"),
    ("--border=-1", "--border"),
    ("--batch_size=0", "--batch_size"),
]


def _program_args(program, tmp_path, tiny_run, case_files):
    if program == "predict":
        return [f"--model={tiny_run}", f"--out_dir={tmp_path / 'out'}",
                *modality_flags(case_files)]
    if program == "evaluate":
        return [f"--model={tiny_run}", f"--out_dir={tmp_path / 'out'}",
                f"--data_root={tmp_path}"]
    return [f"--model={tiny_run}", f"--export_dir={tmp_path / 'out'}"]


@pytest.mark.parametrize("program", ["predict", "evaluate", "export"])
@pytest.mark.parametrize("flag,name", INFERENCE_CASES, ids=[c[0] for c in INFERENCE_CASES])
def test_inference_flags_share_one_validation(tmp_path, cli, tiny_run, case_files, program,
                                              flag, name, monkeypatch):
    import hved_tf.export
    from hved_tf.inference import loading

    def too_early(*args, **kwargs):
        pytest.fail("the model was loaded before the check")
    monkeypatch.setattr(loading, "load_trained", too_early)
    monkeypatch.setattr(hved_tf.export, "load_trained", too_early)
    outcome = cli(program, *_program_args(program, tmp_path, tiny_run, case_files), flag)
    refused(outcome, 2, name)
    assert not (tmp_path / "out").exists()


OTHER_CASES = [
    ("predict", ["--label_convention=brats1999"], 2, "--label_convention"),
    ("predict", ["--t1c=/no/such/file.nii.gz"], 2, "/no/such/file.nii.gz"),
    ("predict", [], 2, "No modality given"),
    ("predict", ["positional"], 2, "positional"),
    ("evaluate", ["--subsets=T9"], 2, "--subsets"),
    ("evaluate", ["--figures=-1"], 2, "--figures"),
    ("export", ["--version=0"], 2, "--version"),
    ("export", ["--label_convention=mine"], 2, "label_convention"),
    ("train", ["--steps=-3"], 2, "--steps"),
    ("train", ["--data_root=/no/such/folder"], 2, "/no/such/folder"),
    ("train", ["--model=u_net"], 2, "--model"),
    ("train", ["--model=unet"], 2, "--subset"),
    ("train", ["--subset=T5"], 2, "--subset"),
    ("train", ["--scaling=0.7"], 2, "--scaling"),
    ("train", ["--lr_decay_factor=2"], 2, "--lr_decay_factor"),
    ("train", ["--validation_subsets=T1+X"], 2, "--validation_subsets"),
    ("train", ["--hist_file=/no/hist.txt"], 2, "/no/hist.txt"),
    ("train", ["--demo_subjects=3"], 2, "--demo_subjects"),
]


@pytest.mark.parametrize("program,args,code,name", OTHER_CASES,
                         ids=[f"{c[0]}:{' '.join(c[1]) or 'nothing'}" for c in OTHER_CASES])
def test_other_bad_flags_are_refused_by_name(tmp_path, cli, tiny_run, program, args, code,
                                             name):
    base = {"predict": [f"--model={tiny_run}", f"--out_dir={tmp_path / 'out'}"],
            "evaluate": [f"--model={tiny_run}", f"--out_dir={tmp_path / 'out'}",
                         *FAST],
            "export": [f"--model={tiny_run}", f"--export_dir={tmp_path / 'out'}"],
            "train": [f"--run_dir={tmp_path / 'out'}"]}[program]
    refused(cli(program, *base, *args), code, name)
    assert not (tmp_path / "out").exists()
