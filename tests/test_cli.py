"""What a user sees of the command lines, run as real processes: --help by group and exit 0; no
TensorFlow C++ log line and no Python warning on a run of each; a finished run re-run says so
at once and changes nothing. (A resumed run's "resuming from step N of M":
tests/reliability/test_models_and_runs.py.)"""
import hashlib
import re
import subprocess
import sys

import pytest

from conftest import REPO, tiny_flags

TINY = tiny_flags(keep_checkpoints=1, steps=2, log_every=1)
# TensorFlow's C++ lines ("I0000 00:00:...", "W1201 ...", "E0000 ..."), absl's start-up notice,
# the CUDA and oneDNN notices, and Python's warnings ("...Warning: ...").
NOISE = re.compile(r"^[IWEF]\d{4} |All log messages before absl|cuInit|cuda|oneDNN|"
                   r"\w+Warning: |^\s+warnings\.warn", re.IGNORECASE)
GROUPS = {"train": ["data", "model", "optimisation", "training windows and augmentation",
                    "intensity augmentation", "validation", "output",
                    "distribution, precision and CPU threads"],
          "predict": ["model", "inputs", "inference (sliding windows)", "post-processing",
                      "voxel size and grids", "protocol", "output"],
          "evaluate": ["models", "data", "segmentations on disk", "inference (sliding windows)",
                       "post-processing", "voxel size and grids", "protocol", "output"],
          "export": ["model", "inference (sliding windows)", "post-processing", "output"]}


def _run(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def _noise(stderr):
    return [line for line in stderr.splitlines() if NOISE.search(line)]


@pytest.mark.parametrize("program", list(GROUPS))
def test_help_lists_the_programs_own_flags_by_group_and_exits_0(program, capfd):
    """A real process for train; the others through Program.call (the same code path)."""
    if program == "train":
        done = _run(f"hved_tf.{program}", "--help")
    else:
        import importlib
        capfd.readouterr()
        code = importlib.import_module(f"hved_tf.{program}").PROGRAM.call(["--help"])
        out, err = capfd.readouterr()
        done = subprocess.CompletedProcess([], code, out, err)
    assert done.returncode == 0, done.stderr[-2000:]
    titles = [line[:-1].split(" (")[0] for line in done.stdout.splitlines()
              if line.endswith(":") and not line.startswith(" ")]
    assert titles == [t.split(" (")[0] for t in GROUPS[program]]
    flags_listed = re.findall(r"^  --(\w+)", done.stdout, re.M)
    assert "model" in flags_listed or "data_root" in flags_listed
    assert "logtostderr" not in flags_listed and "helpfull" not in flags_listed
    assert "[default:" in done.stdout
    assert not _noise(done.stderr), done.stderr


def _snapshot(folder):
    return {p.relative_to(folder): (p.stat().st_mtime_ns,
                                    hashlib.sha256(p.read_bytes()).hexdigest())
            for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("quiet")
    done = _run("hved_tf.train", *TINY, f"--run_dir={root / 'run'}",
                f"--cache_dir={root / 'cache'}")
    return root, done


def test_training_prints_progress_and_no_noise(demo_run):
    root, done = demo_run
    assert done.returncode == 0, done.stderr[-3000:]
    assert not _noise(done.stderr), _noise(done.stderr)
    out = done.stdout
    assert "step 2/2 | loss" in out and "s/step" in out          # not a terminal: lines
    assert "validation at step 2" in out and "test Dice of 1 held-out subjects" in out
    assert "Epoch" not in out


def test_a_finished_run_says_so_and_changes_nothing(demo_run):
    root, first = demo_run
    assert first.returncode == 0
    before = _snapshot(root / "run")
    again = _run("hved_tf.train", *TINY, f"--run_dir={root / 'run'}",
                 f"--cache_dir={root / 'cache'}")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "already complete (2 steps); nothing to do" in again.stdout
    # Nothing prepared, built or trained (a wall-clock bound here failed on a loaded machine).
    assert not any(word in again.stdout for word in ("prepared:", "data:", "step ", "test Dice"))
    assert _snapshot(root / "run") == before


def test_predict_evaluate_and_export_print_no_noise(demo_run, tmp_path):
    root, first = demo_run
    assert first.returncode == 0
    run_dir = root / "run"
    subject = sorted(p for p in (root / "cache").glob("demo_phantoms_*/*") if p.is_dir())[0]
    predicted = _run("hved_tf.predict", f"--model={run_dir}", f"--subject_dir={subject}",
                     f"--out_dir={tmp_path / 'p'}", "--samples=2", "--figure")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    evaluated = _run("hved_tf.evaluate", f"--model={run_dir}", f"--out_dir={tmp_path / 'e'}",
                     "--subsets=T1c,T1c+FLAIR", "--samples=1", "--figures=1")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    exported = _run("hved_tf.export", f"--model={run_dir}", f"--export_dir={tmp_path / 'x'}",
                    "--samples=1")
    assert exported.returncode == 0, exported.stderr[-2000:]
    for done in (predicted, evaluated, exported):
        assert not _noise(done.stderr), _noise(done.stderr)
        assert len(done.stderr) < 2000, done.stderr
    assert "evaluated: 2/2 segmentations" in evaluated.stdout
    assert (tmp_path / "e" / "table1.png").is_file()
