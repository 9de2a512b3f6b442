"""The quality benchmark: a training recipe at several seeds, every run scored on one fixed
test set of demo phantoms, figures with their spread and confidence intervals.

    python -m tools.benchmarks.quality [--recipe configs/demo.cfg] [--set FLAG=VALUE ...]
        [--eval_set FLAG=VALUE ...] [--name NAME] [--seeds 0,1,2,3,4]
    python -m tools.benchmarks.quality --compare NAME_A NAME_B [--seeds 0,1,2]

A recipe is a training flagfile plus overrides (`--set steps=2000`), and optionally evaluate
flags; `--train_from NAME --eval_set noprior_correction` scores the trained runs of recipe NAME
another way, without training again. Each seed `k` trains `python -m hved_tf.train --flagfile RECIPE --seed=k` (the demo's phantoms of seed k)
and scores it with `python -m hved_tf.evaluate` on the test set: `--test_subjects` (48)
anatomical phantoms at the recipe's `--demo_voxel_mm`, generated once from `--test_seed` (a
seed no training run uses, so the test set is disjoint from every training set; at least 30
of them must have an enhancing part), cached in the work folder.

Per seed, and over seeds (mean, sd, worst seed, and two 95% bootstrap intervals: over test
subjects, and over seeds and subjects; `hved_tf.evaluation.statistics`):
- WT, TC with all four sequences; ET with all four on the subjects with an enhancing part;
- each region's Dice averaged over the 15 subsets (ET: on subjects with an enhancing part);
- the enhancing-tumour gap: on subjects with an enhancing part, ET Dice averaged over the
  subsets with T1c minus over those without;
- lesion-wise Dice (BraTS 2023 rules) of each region with all four.
`--compare A B` pairs two recipes on their common seeds and the same subjects: per-seed
differences (B - A), their mean and intervals.

Written: `<out_dir>/<name>.json` and `.md` (commit, date, CPU, wall times per seed), or
`compare_<A>_vs_<B>.json` / `.md`. Work folder (`--work_dir`, default runs/benchmark_quality):
`testsets/`, `cache/` (the demo phantoms and prepared subjects), `recipes/<name>/seed<k>/`
(`recipe.json`, `run/`, `eval/`, `timing.json`). Interrupted, the same command resumes: a
training run resumes from its last validation, an evaluation is written whole or redone, a
finished seed is reused. A seed whose recorded flags differ from the recipe's is refused,
naming the flags (a flag that an older record lacks counts at its default). `--record` makes
the report the recipe's benchmark of record: `hved_tf/training/quality_record.json`, which the
end of training compares a run of the recipe with. Run from the repository root with the
package installed (`pip install -e .`); not a test.
"""
from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import platform
import subprocess
import sys
import time

import numpy as np

from hved_tf.evaluation import statistics
from hved_tf.evaluation.tables import read_csv
from hved_tf.io.atomic import atomic_directory, write_json, write_text
from hved_tf.modalities import MODALITIES, SUBSET_CODES, parse_subset

REPO = pathlib.Path(__file__).resolve().parents[2]
ALL_FOUR = "T1+T1c+T2+FLAIR"
REGIONS = {"WT": "whole_tumour", "TC": "tumour_core", "ET": "enhancing"}
MIN_TEST_SUBJECTS, MIN_ENHANCING = 40, 30
# Flags the benchmark sets itself, per seed: not part of a recipe.
OWN_FLAGS = ("seed", "run_dir", "cache_dir", "retest")
# The figures, in the report's order: key -> (label, subjects it is averaged over).
FIGURES = {
    "wt_all4": ("WT, all four", "all"),
    "tc_all4": ("TC, all four", "all"),
    "et_all4": ("ET, all four (subjects with ET)", "enhancing"),
    "et_all4_all": ("ET, all four (all subjects; no ET predicted = 1)", "all"),
    "wt_15": ("WT, mean of 15 subsets", "all"),
    "tc_15": ("TC, mean of 15 subsets", "all"),
    "et_15": ("ET, mean of 15 subsets (subjects with ET)", "enhancing"),
    "et_gap": ("ET gap: T1c subsets minus the others (subjects with ET)", "enhancing"),
    "lesion_wt_all4": ("lesion-wise WT, all four", "all"),
    "lesion_tc_all4": ("lesion-wise TC, all four", "all"),
    "lesion_et_all4": ("lesion-wise ET, all four", "all"),
}


class BenchmarkError(ValueError):
    """Bad input to the benchmark, said in one line."""


# ----------------------------------------------------------------------------- recipes

def resolve_train_flags(flagfile, overrides):
    """{flag: value} of every training flag for `--flagfile flagfile` plus `overrides`
    ("name=value" or "name" / "noname" for booleans), as the training program parses them."""
    from absl import flags
    from hved_tf.train import PROGRAM
    for name in overrides:
        bare = name.split("=", 1)[0].lstrip("-")
        if bare in OWN_FLAGS or bare.removeprefix("no") in OWN_FLAGS:
            raise BenchmarkError(f"--set {name}: the benchmark sets --{bare} itself (per seed).")
    values = flags.FLAGS                           # this process parses no other flags
    before = set(values)
    PROGRAM.define_flags()
    train_names = set(values) - before
    try:
        values(["benchmark", f"--flagfile={flagfile}",
                *(f"--{o.lstrip('-')}" for o in overrides)])
        parsed = {n: values[n].value for n in sorted(train_names) if n not in OWN_FLAGS}
        TRAIN_DEFAULTS.update({n: _jsonable(values[n].default) for n in parsed})
        RECIPE_CONFIGS[str(flagfile), tuple(overrides)] = _recipe_config()
    except flags.Error as err:
        raise BenchmarkError(f"recipe {flagfile}: {err}") from None
    finally:
        for name in train_names:
            delattr(values, name)
    return {name: _jsonable(value) for name, value in parsed.items()}


TRAIN_DEFAULTS = {}      # this code's default of every training flag (filled by the above)
RECIPE_CONFIGS = {}      # (flagfile, overrides) -> the recipe's TrainConfig dict, per-seed parts out


def _recipe_config():
    """The parsed recipe's resolved TrainConfig as this code builds it (per-seed settings left
    out; hved_tf.training.quality_record), or None when it does not validate here."""
    from hved_tf.config import TrainConfig, flagdefs
    from hved_tf.training.quality_record import comparable
    try:
        return comparable(flagdefs.build(TrainConfig).validate().to_dict())
    except ValueError:
        return None


def _jsonable(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def recipe_record(flagfile, overrides, eval_overrides, train_from=""):
    """What a recipe is: its training flags (all of them, resolved), its evaluate flags, and the
    benchmarked recipe whose trained runs it scores instead of training its own (if any)."""
    return {"flagfile": str(flagfile), "set": list(overrides), "eval_set": list(eval_overrides),
            "train_flags": resolve_train_flags(flagfile, overrides), "train_from": train_from}


def differing_flags(recorded, wanted):
    """Names of the flags (training flags, `eval_set`, `train_from`) whose values differ. A
    training flag that a record made by older code lacks counts as that flag's default (a new
    flag's default keeps the behaviour the record was trained with)."""
    names = []
    old, new = recorded.get("train_flags", {}), wanted["train_flags"]
    for n in sorted(set(old) | set(new)):
        if old.get(n, TRAIN_DEFAULTS.get(n, "<unset>")) != new.get(n, "<unset>"):
            names.append(n)
    if sorted(recorded.get("eval_set", [])) != sorted(wanted["eval_set"]):
        names.append("eval_set")
    if recorded.get("train_from", "") != wanted.get("train_from", ""):
        names.append("train_from")
    return names


def check_record(seed_dir, wanted):
    """Writes the seed's recipe record, or refuses a seed recorded with other flags (or a
    run folder without a record: nothing says which recipe trained it)."""
    path = seed_dir / "recipe.json"
    if path.is_file():
        recorded = json.loads(path.read_text())
        diff = differing_flags(recorded, wanted)
        if diff:
            old, new = recorded.get("train_flags", {}), wanted["train_flags"]
            shown = ", ".join(f"--{n} (recorded {old.get(n, recorded.get(n))!r}, now "
                              f"{new.get(n, wanted.get(n))!r})" for n in diff[:3])
            raise BenchmarkError(f"{seed_dir} was trained with other flags: {shown}. Give this "
                                 "recipe another --name, or remove that folder.")
        return
    if (seed_dir / "run").exists():
        raise BenchmarkError(f"{seed_dir / 'run'} has no recipe record: nothing says which "
                             "flags trained it. Remove that folder.")
    write_json(path, wanted)


# ----------------------------------------------------------------------------- the test set

def demo_voxel_mm(train_flags):
    if train_flags.get("data_root") != "demo" or train_flags.get("demo_phantoms") != \
            "anatomical":
        raise BenchmarkError("The quality benchmark trains on the demo's anatomical phantoms: "
                             "the recipe needs --data_root=demo --demo_phantoms=anatomical, got "
                             f"--data_root={train_flags.get('data_root')} --demo_phantoms="
                             f"{train_flags.get('demo_phantoms')}.")
    return float(train_flags["demo_voxel_mm"])


def test_set(work_dir, n, seed, voxel_mm, explicit=""):
    """(data folder, description) of the fixed test set: `explicit` if given (refused when
    made at another voxel size), else generated once under work_dir/testsets."""
    from hved_tf.data.anatomy import GENERATOR_VERSION, write_anatomical_dataset
    folder = pathlib.Path(explicit) if explicit else (
        pathlib.Path(work_dir) / "testsets"
        / f"anatomical_v{GENERATOR_VERSION}_{voxel_mm:g}mm_n{n}_seed{seed}")
    about_path = folder / "testset.json"
    if not about_path.is_file():
        if explicit:
            raise BenchmarkError(f"--test_set {folder} has no testset.json: not a test set "
                                 "this benchmark made.")
        print(f"generating the test set: {n} phantoms at {voxel_mm:g} mm (seed {seed}) into "
              f"{folder}", flush=True)
        with atomic_directory(folder) as tmp:
            ids = write_anatomical_dataset(tmp / "data", n, voxel_mm, seed=seed,
                                           layout="brats2023", profile="default")
            enhancing = [i for i in ids if _has_enhancing(tmp / "data" / i / f"{i}-seg.nii.gz")]
            write_json(tmp / "testset.json", {
                "generator": "anatomical", "generator_version": GENERATOR_VERSION,
                "profile": "default", "voxel_mm": voxel_mm, "seed": seed, "subjects": ids,
                "enhancing": enhancing})
    about = json.loads(about_path.read_text())
    if about["voxel_mm"] != voxel_mm or about["generator_version"] != GENERATOR_VERSION:
        raise BenchmarkError(
            f"The test set {folder} was generated at {about['voxel_mm']:g} mm (generator "
            f"v{about['generator_version']}); the recipe trains at {voxel_mm:g} mm (generator "
            f"v{GENERATOR_VERSION}). Use a test set made for this recipe.")
    if len(about["subjects"]) < MIN_TEST_SUBJECTS or len(about["enhancing"]) < MIN_ENHANCING:
        raise BenchmarkError(
            f"The test set {folder} has {len(about['subjects'])} subjects, "
            f"{len(about['enhancing'])} with an enhancing part; the benchmark needs at least "
            f"{MIN_TEST_SUBJECTS} and {MIN_ENHANCING}: raise --test_subjects.")
    return folder / "data", about


def _has_enhancing(label_path):
    import nibabel as nib
    return bool(np.any(np.asanyarray(nib.load(label_path).dataobj) == 3))


# ----------------------------------------------------------------------------- figures

def seed_figures(rows, about):
    """{figure key: [value per test subject]} of one run's evaluate rows (results.csv), the
    subjects in the test set's order."""
    cells = {}
    for row in rows:
        cells[row["subject"], row["subset"], row["target"], row["metric"]] = row["value"]
    subjects, enhancing = about["subjects"], about["enhancing"]
    t1c = MODALITIES.index("T1c")
    with_t1c = [c for c in SUBSET_CODES if t1c in parse_subset(c)]
    without = [c for c in SUBSET_CODES if t1c not in parse_subset(c)]

    def cell(subject, subset, region, metric="dice"):
        key = (subject, subset, REGIONS[region], metric)
        if key not in cells:
            raise BenchmarkError(f"The evaluation has no {metric} of {region} for {subject} "
                                 f"with {subset}: an incomplete results.csv.")
        return cells[key]

    def mean_over(subject, subsets, region):
        return float(np.mean([cell(subject, s, region) for s in subsets]))

    figures = {
        "wt_all4": [cell(s, ALL_FOUR, "WT") for s in subjects],
        "tc_all4": [cell(s, ALL_FOUR, "TC") for s in subjects],
        "et_all4": [cell(s, ALL_FOUR, "ET") for s in enhancing],
        "et_all4_all": [cell(s, ALL_FOUR, "ET") for s in subjects],
        "wt_15": [mean_over(s, SUBSET_CODES, "WT") for s in subjects],
        "tc_15": [mean_over(s, SUBSET_CODES, "TC") for s in subjects],
        "et_15": [mean_over(s, SUBSET_CODES, "ET") for s in enhancing],
        "et_gap": [mean_over(s, with_t1c, "ET") - mean_over(s, without, "ET")
                   for s in enhancing],
    }
    for region in REGIONS:
        figures[f"lesion_{region.lower()}_all4"] = [cell(s, ALL_FOUR, region, "lesion_dice")
                                                    for s in subjects]
    return figures


def summarise_seeds(results):
    """{figure: Summary.as_dict()} over the seeds' `figures` (same subjects in each)."""
    return {key: statistics.summarise([r["figures"][key] for r in results]).as_dict()
            for key in FIGURES}


def compare_seeds(results_a, results_b):
    return {key: statistics.paired([r["figures"][key] for r in results_a],
                                   [r["figures"][key] for r in results_b]).as_dict()
            for key in FIGURES}


# ----------------------------------------------------------------------------- running

def _call(args, log_path):
    """Runs `python -m args...`, its output appended to log_path; the seconds it took."""
    start = time.time()
    with open(log_path, "a") as log:
        done = subprocess.run([sys.executable, "-m", *args], cwd=REPO, stdout=log,
                              stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = pathlib.Path(log_path).read_text()[-1500:]
        raise BenchmarkError(f"{' '.join(args[:1])} exited {done.returncode} (log: {log_path}):"
                             f"\n{tail}")
    return time.time() - start


def run_seed(seed, recipe, recipe_dir, work_dir, data_root, about):
    """Trains (or resumes) and evaluates one seed; returns its result (reused when done)."""
    seed_dir = recipe_dir / f"seed{seed}"
    seed_dir.mkdir(parents=True, exist_ok=True)
    check_record(seed_dir, recipe)
    result_path = seed_dir / "result.json"
    if result_path.is_file():
        return json.loads(result_path.read_text())
    timing_path = seed_dir / "timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.is_file() else {}
    run_dir, eval_dir = seed_dir / "run", seed_dir / "eval"
    if recipe.get("train_from"):
        run_dir, timing["train_s"] = trained_run(recipe, work_dir, seed)
    if not (run_dir / "model.weights.h5").is_file() or "train_s" not in timing:
        print(f"  seed {seed}: training ({run_dir})", flush=True)
        seconds = _call(["hved_tf.train", f"--flagfile={recipe['flagfile']}",
                         *(f"--{o.lstrip('-')}" for o in recipe["set"]), f"--seed={seed}",
                         f"--run_dir={run_dir}", f"--cache_dir={work_dir / 'cache'}"],
                        seed_dir / "train.log")
        timing["train_s"] = timing.get("train_s", 0.0) + seconds
        write_json(timing_path, timing)
    if not (eval_dir / "results.csv").is_file():
        print(f"  seed {seed}: evaluating on {len(about['subjects'])} test subjects", flush=True)
        timing["evaluate_s"] = _call(
            ["hved_tf.evaluate", f"--model={run_dir}", f"--data_root={data_root}",
             f"--out_dir={eval_dir}", "--lesion_protocol=brats2023", "--overwrite",
             f"--cache_dir={work_dir / 'cache'}", *(f"--{o.lstrip('-')}"
                                                    for o in recipe["eval_set"])],
            seed_dir / "evaluate.log")
        write_json(timing_path, timing)
    result = {"seed": seed, "figures": seed_figures(read_csv(eval_dir / "results.csv"), about),
              "train_s": timing.get("train_s"), "evaluate_s": timing.get("evaluate_s"),
              "commit": machine()["commit"]}
    write_json(result_path, result)
    return result


def trained_run(recipe, work_dir, seed):
    """(run folder, training seconds) of seed `seed` of the recipe named by `train_from`,
    refused unless it is trained and was trained with this recipe's training flags."""
    source = work_dir / "recipes" / recipe["train_from"] / f"seed{seed}"
    if not (source / "run" / "model.weights.h5").is_file():
        raise BenchmarkError(f"--train_from {recipe['train_from']}: seed {seed} is not trained "
                             f"({source}); benchmark that recipe at this seed first.")
    recorded = json.loads((source / "recipe.json").read_text())
    diff = [n for n in differing_flags(recorded, {**recipe, "eval_set": recorded["eval_set"],
                                                  "train_from": recorded.get("train_from", "")})]
    if diff:
        raise BenchmarkError(f"--train_from {recipe['train_from']}: it was trained with other "
                             f"flags ({', '.join('--' + n for n in diff[:3])}); give the same "
                             "--recipe and --set.")
    timing = json.loads((source / "timing.json").read_text())
    return source / "run", timing.get("train_s")


def machine():
    """Commit, date, CPU model and its vector flags, Python and TensorFlow versions."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""
    cpu, cpu_flags = platform.processor(), []
    try:
        info = pathlib.Path("/proc/cpuinfo").read_text()
        cpu = next(line.split(":", 1)[1].strip() for line in info.splitlines()
                   if line.startswith("model name"))
        present = next(line.split(":", 1)[1].split() for line in info.splitlines()
                       if line.startswith("flags"))
        cpu_flags = [f for f in present if f.startswith(("avx", "amx", "fma", "sse4"))]
    except (OSError, StopIteration):
        pass
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"commit": git("rev-parse", "--short", "HEAD") + ("+changes" if dirty else ""),
            "date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu,
            "cpu_flags": cpu_flags, "cores": _cores(), "python": platform.python_version()}


def _cores():
    import os
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# ----------------------------------------------------------------------------- reports

def _shown(path):
    """A path as the repository names it, when it is inside it."""
    try:
        return str(pathlib.Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _fmt_ci(ci):
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def report_markdown(name, recipe, about, results, summary, env):
    seeds = [r["seed"] for r in results]
    lines = [f"# Quality benchmark: {name}", "",
             f"Recipe: `{_shown(recipe['flagfile'])}`"
             + (f" with `{' '.join('--' + s for s in recipe['set'])}`" if recipe["set"] else "")
             + (f"; evaluated with `{' '.join('--' + s for s in recipe['eval_set'])}`"
                if recipe["eval_set"] else "") + ".",
             f"Seeds {', '.join(map(str, seeds))}; test set: {len(about['subjects'])} anatomical "
             f"phantoms at {about['voxel_mm']:g} mm (seed {about['seed']}), "
             f"{len(about['enhancing'])} with an enhancing part.",
             f"Report made at commit {env['commit']}, {env['date']}, on {env['cpu']} "
             f"({env['cores']} cores; {' '.join(env['cpu_flags'])}); each seed's commit below.",
             "",
             "Dice. Mean ± sd over seeds, the worst seed, and 95% bootstrap intervals: over "
             "test subjects (seeds averaged), and over seeds and subjects.", "",
             "| figure | " + " | ".join(f"seed {s}" for s in seeds)
             + " | mean ± sd | worst | CI subjects | CI seeds×subjects |",
             "|---|" + "---|" * (len(seeds) + 4)]
    for key, (label, _) in FIGURES.items():
        s = summary[key]
        lines.append(f"| {label} | " + " | ".join(f"{v:.3f}" for v in s["per_seed"])
                     + f" | {s['mean']:.3f} ± {s['sd']:.3f} | {s['worst']:.3f} | "
                     f"{_fmt_ci(s['ci_subjects'])} | {_fmt_ci(s['ci_seeds_subjects'])} |")
    lines += ["", "Wall time per seed (s; training includes the run's own end-of-training "
              "test, evaluation scores all 15 subsets of every test subject; both depend on "
              "what else the machine ran), and the commit that trained and scored it:", "",
              "| seed | training | evaluation | commit |", "|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['seed']} | {r['train_s'] or 0:.0f} | {r['evaluate_s'] or 0:.0f} | "
                     f"{r.get('commit', 'not recorded')} |")
    return "\n".join(lines) + "\n"


def compare_markdown(name_a, name_b, seeds, about, diff, env):
    lines = [f"# Paired comparison: {name_b} minus {name_a}", "",
             f"Seeds {', '.join(map(str, seeds))}, the same {len(about['subjects'])} test "
             f"subjects ({len(about['enhancing'])} with an enhancing part). Commit "
             f"{env['commit']}, {env['date']}.", "",
             "| figure | " + " | ".join(f"seed {s}" for s in seeds)
             + " | mean difference | seeds ahead | CI subjects | CI seeds×subjects |",
             "|---|" + "---|" * (len(seeds) + 4)]
    for key, (label, _) in FIGURES.items():
        d = diff[key]
        ahead = sum(v > 0 for v in d["per_seed"])
        lines.append(f"| {label} | " + " | ".join(f"{v:+.3f}" for v in d["per_seed"])
                     + f" | {d['mean']:+.3f} | {ahead} of {len(seeds)} | "
                     f"{_fmt_ci(d['ci_subjects'])} | {_fmt_ci(d['ci_seeds_subjects'])} |")
    return "\n".join(lines) + "\n"


def _write_report(stem, data, markdown):
    """<stem>.json and <stem>.md, each written whole; the table printed."""
    write_json(stem.parent / f"{stem.name}.json", data)
    write_text(stem.parent / f"{stem.name}.md", markdown)
    print(markdown)
    print(f"wrote {stem}.json and .md")


def _seeds(text):
    try:
        seeds = sorted({int(s) for s in text.split(",") if s.strip()})
    except ValueError:
        raise BenchmarkError(f"--seeds must be integers separated by commas, got {text!r}.") \
            from None
    if not seeds:
        raise BenchmarkError("--seeds names no seed.")
    return seeds


def benchmark(args):
    work_dir = pathlib.Path(args.work_dir).resolve()
    seeds = _seeds(args.seeds)
    if args.test_seed in seeds:
        raise BenchmarkError(f"--test_seed {args.test_seed} is also a training seed: the test "
                             "set would be a training set's phantoms.")
    flagfile = pathlib.Path(args.recipe).resolve()
    if not flagfile.is_file():
        raise BenchmarkError(f"--recipe {args.recipe}: no such flagfile.")
    recipe = recipe_record(flagfile, args.set, args.eval_set, args.train_from)
    name = args.name or flagfile.stem
    data_root, about = test_set(work_dir, args.test_subjects, args.test_seed,
                                demo_voxel_mm(recipe["train_flags"]), args.test_set)
    recipe_dir = work_dir / "recipes" / name
    results = []
    for seed in seeds:
        print(f"{name}: seed {seed} ({len(results) + 1} of {len(seeds)})", flush=True)
        results.append(run_seed(seed, recipe, recipe_dir, work_dir, data_root, about))
        r = results[-1]["figures"]
        print(f"  seed {seed}: WT {np.mean(r['wt_all4']):.3f}, ET {np.mean(r['et_all4']):.3f} "
              f"(subjects with ET), ET gap {np.mean(r['et_gap']):+.3f}", flush=True)
    summary = summarise_seeds(results)
    env = machine()
    out = pathlib.Path(args.out_dir)
    _write_report(out / name, {"name": name, "recipe": recipe, "test_set": about,
                               "machine": env, "seeds": results, "summary": summary},
                  report_markdown(name, recipe, about, results, summary, env))
    if args.record:
        write_record(name, recipe, about, results, out / f"{name}.md")


def write_record(name, recipe, about, results, report):
    """hved_tf/training/quality_record.json: what training compares a run of this recipe with
    at its end (hved_tf.training.quality_record)."""
    from hved_tf.training.quality_record import RECORD
    config = RECIPE_CONFIGS.get((recipe["flagfile"], tuple(recipe["set"])))
    if config is None or recipe["eval_set"] or recipe.get("train_from"):
        raise BenchmarkError("--record needs a recipe that trains its own runs, evaluated with "
                             "evaluate's defaults (as the end of training tests).")
    shown = _shown(report)
    write_json(RECORD, {"name": name, "seeds": [r["seed"] for r in results],
                        "test_subjects": len(about["subjects"]), "report": shown,
                        "config": config,
                        "figures": {key: [float(np.mean(r["figures"][key])) for r in results]
                                    for key in ("wt_all4", "et_gap")}})
    print(f"wrote {RECORD}: training compares runs of this recipe with it")


def compare(args):
    work_dir = pathlib.Path(args.work_dir).resolve()
    name_a, name_b = args.compare
    sides = []
    for name in (name_a, name_b):
        recipe_dir = work_dir / "recipes" / name
        done = {int(p.parent.name[4:]): json.loads(p.read_text())
                for p in recipe_dir.glob("seed*/result.json")}
        if not done:
            raise BenchmarkError(f"No finished seed of recipe {name!r} in {recipe_dir}: run the "
                                 "benchmark on it first.")
        sides.append(done)
    seeds = sorted(set(sides[0]) & set(sides[1]))
    if args.seeds:
        seeds = [s for s in _seeds(args.seeds) if s in seeds]
    if not seeds:
        raise BenchmarkError(f"{name_a} and {name_b} have no finished seed in common.")
    testsets = {json.loads((work_dir / "recipes" / n / f"seed{seeds[0]}" / "recipe.json")
                           .read_text())["train_flags"]["demo_voxel_mm"] for n in args.compare}
    if len(testsets) > 1:
        raise BenchmarkError(f"{name_a} and {name_b} train at other voxel sizes: their test "
                             "sets differ, nothing to pair.")
    about = json.loads(next((work_dir / "testsets").glob(
        f"*_{testsets.pop():g}mm_n*_seed{args.test_seed}/testset.json")).read_text())
    diff = compare_seeds([sides[0][s] for s in seeds], [sides[1][s] for s in seeds])
    env = machine()
    out = pathlib.Path(args.out_dir)
    stem = f"compare_{name_a}_vs_{name_b}"
    _write_report(out / stem, {"a": name_a, "b": name_b, "seeds": seeds, "test_set": about,
                               "machine": env, "difference": diff},
                  compare_markdown(name_a, name_b, seeds, about, diff, env))


def parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default=str(REPO / "configs" / "demo.cfg"),
                   help="The training flagfile.")
    p.add_argument("--set", action="append", default=[], metavar="FLAG=VALUE",
                   help="A training flag over the flagfile's (repeatable).")
    p.add_argument("--eval_set", action="append", default=[], metavar="FLAG=VALUE",
                   help="An evaluate flag (repeatable), e.g. noprior_correction.")
    p.add_argument("--name", default="", help="The recipe's name (default: the flagfile's).")
    p.add_argument("--train_from", default="", metavar="NAME",
                   help="Score the trained runs of the benchmarked recipe NAME (same training "
                   "flags) with other --eval_set flags, instead of training again.")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--record", action="store_true",
                   help="Make this the benchmark of record of the recipe: training prints where "
                   "a run of it stands (hved_tf/training/quality_record.json).")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"),
                   help="Pair two benchmarked recipes instead of running one.")
    p.add_argument("--work_dir", default=str(REPO / "runs" / "benchmark_quality"))
    p.add_argument("--out_dir", default=str(REPO / "docs" / "benchmarks" / "quality"))
    p.add_argument("--test_subjects", type=int, default=48)
    p.add_argument("--test_seed", type=int, default=7919)
    p.add_argument("--test_set", default="", help="A test-set folder made by this benchmark "
                   "(default: generated for the recipe's voxel size).")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        compare(args) if args.compare else benchmark(args)
    except BenchmarkError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command to resume.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
