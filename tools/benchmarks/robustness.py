"""Robustness to unseen scanners: the demo recipe trained with and without intensity
augmentation on anatomical phantoms of one scanner profile, evaluated on phantoms of profiles it
never saw. Not a test: run it by hand (about 36 min on 2 CPU cores).

    python -m tools.benchmarks.robustness [--work_dir DIR] [--train_subjects 24] [--test_subjects 5]
        [--steps N] [--subsets T1+T1c+T2+FLAIR,T1c,FLAIR,T1+T2]

Training data: `--train_subjects` phantoms (at the demo's --demo_voxel_mm) of the "default"
profile (hved_tf.data.anatomy: PROFILES); the recipe is configs/demo.cfg on them ("plain": its
intensity augmentation turned off; "augmented": as the config has it). Test data, one set per
profile, other seeds than the training set: "default" (the training scanner), "bright_biased"
(2.5-4x the intensity scale, a strong bias field, LPS files) and "noisy_thick" (0.3-0.5x the
scale, 3x the noise, 4 mm slices). Prints the mean Dice over `--subsets` (and with all four
sequences) per model and profile. Runs are kept in the work folder: a second call reuses
finished ones.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[2]
PROFILES = ("default", "bright_biased", "noisy_thick")
OFF = ["--bias_field=0,0.3", "--gamma=0,0.3", "--intensity_scale=0,0.1,0.1", "--noise=0,0.1",
       "--blur=0,1.0"]
REGIONS = ("whole_tumour", "tumour_core", "enhancing")


def _run(args):
    done = subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True,
                          text=True)
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"failed: {' '.join(args[:2])}")
    return done.stdout


def _demo_voxel_mm():
    """The voxel size configs/demo.cfg trains at (the phantoms here are made at the same)."""
    for line in (REPO / "configs" / "demo.cfg").read_text().splitlines():
        if line.startswith("--demo_voxel_mm="):
            return float(line.split("=", 1)[1])
    from hved_tf.config import DataConfig
    return DataConfig().demo_voxel_mm                # the flag's default


def _datasets(work, n_train, n_test):
    from hved_tf.data.anatomy import write_anatomical_dataset
    voxel_mm = _demo_voxel_mm()
    sets = {"train": (work / "train", n_train, 0, "default")}
    sets.update({p: (work / f"test_{p}", n_test, 100 + k, p) for k, p in enumerate(PROFILES)})
    for folder, n, seed, profile in sets.values():
        if not folder.is_dir():
            write_anatomical_dataset(folder, n, voxel_mm, seed=seed, profile=profile)
    return {name: folder for name, (folder, *_) in sets.items()}


def _mean_dice(out_dir, subsets):
    summary = json.loads((out_dir / "summary.json").read_text())["summary"]
    model = next(iter(summary))
    cells = summary[model]
    mean = {r: sum(cells[s][r]["dice"] for s in subsets) / len(subsets) for r in REGIONS}
    return mean, {r: cells["T1+T1c+T2+FLAIR"][r]["dice"] for r in REGIONS}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work_dir", default="")
    parser.add_argument("--train_subjects", type=int, default=24)
    parser.add_argument("--test_subjects", type=int, default=5)
    parser.add_argument("--steps", type=int, default=0, help="0: the demo's")
    parser.add_argument("--subsets", default="T1+T1c+T2+FLAIR,T1c,FLAIR,T1+T2")
    args = parser.parse_args(argv)
    work = pathlib.Path(args.work_dir or tempfile.mkdtemp(prefix="hved_bench_robust_"))
    work.mkdir(parents=True, exist_ok=True)
    data = _datasets(work, args.train_subjects, args.test_subjects)
    subsets = args.subsets.split(",")
    results = {}
    for recipe, extra in (("plain", OFF), ("augmented", [])):
        run = work / f"run_{recipe}"
        _run(["hved_tf.train", "--flagfile", str(REPO / "configs" / "demo.cfg"),
              f"--data_root={data['train']}", f"--run_dir={run}",
              *([f"--steps={args.steps}"] if args.steps else []), *extra])
        for profile in PROFILES:
            out = work / f"eval_{recipe}_{profile}"
            if not (out / "summary.json").is_file():
                _run(["hved_tf.evaluate", f"--model={run}", f"--data_root={data[profile]}",
                      f"--out_dir={out}", f"--subsets={args.subsets}", "--lesion_protocol=none",
                      f"--cache_dir={work / 'cache_eval'}"])
            results[recipe, profile] = _mean_dice(out, subsets)
    print(f"Dice (WT / TC / ET), demo recipe ({args.steps or 'its'} steps) trained on "
          f"{args.train_subjects} 'default' phantoms, {args.test_subjects} test phantoms per "
          f"scanner profile; mean over {', '.join(subsets)} | all four sequences:")
    print("| profile | plain | augmented | plain, all four | augmented, all four |")
    print("|---|---|---|---|---|")
    for profile in PROFILES:
        cells = []
        for k in (0, 1):
            for recipe in ("plain", "augmented"):
                d = results[recipe, profile][k]
                cells.append(" / ".join(f"{d[r]:.3f}" for r in REGIONS))
        print(f"| {profile}{' (seen)' if profile == 'default' else ''} | "
              + " | ".join(cells[:2] + cells[2:]) + " |")


if __name__ == "__main__":
    main()
