"""Finding subjects under a data root (every BraTS layout), and train/validation/test splits.

Layouts, recognised from the file names (detected automatically; the most common one wins):
- "brats2018":  HGG|LGG/<id>/<id>_{t1,t1ce,t2,flair,seg}.nii.gz   (BraTS 2018 and 2019)
- "brats2020":  BraTS20_Training_001/BraTS20_Training_001_{t1,t1ce,t2,flair,seg}.nii.gz
- "brats2021":  BraTS2021_00000/BraTS2021_00000_{t1,t1ce,t2,flair,seg}.nii.gz
- "brats2023":  BraTS-GLI-00000-000/BraTS-GLI-00000-000-{t1n,t1c,t2w,t2f,seg}.nii.gz
- "release":    HGG12_{T1,T1c,T2,Flair,Label}.nii.gz, flat (the original release's cropped files)
A subject may lack modalities (recorded in `paths`/`available`) or its label (inference only).

Splits: the release's CSV (rows "HGG100_,Training|Validation|Inference", with its
corresponding_naming.csv mapping HGG100 to HGG_Brats18_<id>), a plain file of one id per line,
and seeded k-fold generation with the paper's 70/10/20 proportions.
"""
from __future__ import annotations

import csv
import dataclasses
import logging
import os
import pathlib
import re
from collections import Counter

import numpy as np

from hved_tf.modalities import MODALITIES, canonical_modality

log = logging.getLogger(__name__)

_NII = r"\.nii(?:\.gz)?$"
LAYOUTS = {
    "brats2023": re.compile(r"^(?P<id>BraTS-[A-Za-z]+-\d+-\d+)-(?P<suffix>t1n|t1c|t2w|t2f|seg)"
                            + _NII),
    "brats2021": re.compile(r"^(?P<id>BraTS2021_\d+)_(?P<suffix>t1|t1ce|t2|flair|seg)" + _NII),
    "brats2020": re.compile(r"^(?P<id>BraTS20_[A-Za-z]+_\d+)_(?P<suffix>t1|t1ce|t2|flair|seg)"
                            + _NII),
    "brats2018": re.compile(r"^(?P<id>Brats1[789]_.+?)_(?P<suffix>t1|t1ce|t2|flair|seg)" + _NII),
    "release": re.compile(r"^(?P<id>(?:HGG|LGG)\d+)_(?P<suffix>T1|T1c|T2|Flair|Label)" + _NII),
}
LABEL_SUFFIXES = {"seg", "Label"}
LABEL_CONVENTION = {"brats2023": "brats2023"}   # every other layout: "brats2018"


@dataclasses.dataclass
class Subject:
    id: str
    paths: dict                   # canonical modality -> pathlib.Path, present ones only
    label_path: pathlib.Path | None
    layout: str

    @property
    def available(self) -> np.ndarray:
        """float32 [4]: 1 for each modality the subject has."""
        return np.array([1.0 if m in self.paths else 0.0 for m in MODALITIES], np.float32)

    @property
    def label_convention(self) -> str:
        """The label values of the subject's files: "brats2023" or "brats2018"."""
        return LABEL_CONVENTION.get(self.layout, "brats2018")

    @property
    def grade(self) -> str | None:
        """"HGG"/"LGG" where the layout says it, else None."""
        for part in (self.id, *(p.parent.name for p in self.paths.values())):
            if part.startswith(("HGG", "LGG")):
                return part[:3]
        first = next(iter(self.paths.values()), self.label_path)
        if first is not None and first.parent.parent.name in ("HGG", "LGG"):
            return first.parent.parent.name
        return None


def subject_from_files(paths: dict) -> Subject:
    """A Subject from the files of its sequences.

    Args:
        paths: {modality (any spelling): path}; empty paths are left out.

    Returns:
        The Subject, its id from the files' names (`files_subject_id`).

    Raises:
        ValueError: no file, or one file given for two modalities.
    """
    paths = {canonical_modality(m): pathlib.Path(p) for m, p in paths.items() if p}
    if not paths:
        raise ValueError("No modality given: pass at least one of --t1, --t1c, --t2, --flair "
                         "(or --subject_dir / --data_root).")
    seen: dict[pathlib.Path, str] = {}
    for modality, path in paths.items():
        key = path.resolve()
        if key in seen:
            raise ValueError(f"{path} is given as both {seen[key]} and {modality}; each "
                             "modality needs its own file.")
        seen[key] = modality
    ordered = {m: paths[m] for m in MODALITIES if m in paths}
    # Files named as a known layout names them (e.g. BraTS 2023's -t1c, -t2f) follow its label
    # convention, as a subject folder of that layout does.
    layouts = {(_match(p.name) or ("files",))[0] for p in ordered.values()}
    layout = layouts.pop() if len(layouts) == 1 else "files"
    return Subject(files_subject_id(list(ordered.values())), ordered, None, layout)


def files_subject_id(paths: list) -> str:
    """A subject's id from its files.

    Args:
        paths: the files (pathlib.Path).

    Returns:
        The dataset id their names carry (a known layout's, e.g. BraTS20_Training_024 of
        BraTS20_Training_024_t1ce.nii.gz), else the folder holding them all, else the first
        file's name without its extensions.
    """
    matched = {m[1] for m in (_match(p.name) for p in paths) if m}
    if len(matched) == 1:
        return matched.pop()
    folders = {p.resolve().parent for p in paths}
    if len(folders) == 1:
        folder = folders.pop()
        if folder.name:
            return folder.name
    return paths[0].name.split(".")[0]


def _match(name):
    for layout, pattern in LAYOUTS.items():
        m = pattern.match(name)
        if m:
            return layout, m.group("id"), m.group("suffix")
    return None


def discover_subjects(root: str | os.PathLike, layout: str | None = None) -> list[Subject]:
    """Every subject of a dataset folder.

    Args:
        root: the folder (searched recursively for BraTS-named NIfTI files).
        layout: one of `LAYOUTS` (None: the most common one found).

    Returns:
        The subjects with at least one image, sorted by id.
    """
    root = pathlib.Path(root)
    if not root.is_dir():
        raise ValueError(f"Data root {root} is not a folder.")
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"Unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}.")
    found = []
    for path in sorted(root.rglob("*.nii*")):
        if path.name.startswith("."):
            continue
        hit = _match(path.name)
        if hit:
            found.append((path, *hit))
    if not found:
        raise ValueError(
            f"No BraTS-named NIfTI file under {root}. Expected one of the layouts "
            f"{', '.join(LAYOUTS)} (e.g. BraTS2021_00000/BraTS2021_00000_t1.nii.gz or "
            "HGG12_T1c.nii.gz).")
    counts = Counter(hit[1] for hit in found)
    chosen = layout or counts.most_common(1)[0][0]
    others = {k: v for k, v in counts.items() if k != chosen}
    if others:
        log.warning(f"{root}: layout {chosen}; ignoring {sum(others.values())} file(s) named "
                    f"for other layouts {sorted(others)}.")
    subjects: dict[str, Subject] = {}
    for path, lay, sid, suffix in found:
        if lay != chosen:
            continue
        subject = subjects.setdefault(sid, Subject(sid, {}, None, chosen))
        if suffix in LABEL_SUFFIXES:
            if subject.label_path is not None:
                raise ValueError(f"Subject {sid} has two label files: {subject.label_path} "
                                 f"and {path}.")
            subject.label_path = path
            continue
        modality = canonical_modality(suffix)
        if modality in subject.paths:
            raise ValueError(f"Subject {sid} has two {modality} files: "
                             f"{subject.paths[modality]} and {path}.")
        subject.paths[modality] = path
    result = []
    for sid in sorted(subjects):
        subject = subjects[sid]
        if not subject.paths:
            log.warning("Subject %s has a label but no image; skipped.", sid)
            continue
        subject.paths = {m: subject.paths[m] for m in MODALITIES if m in subject.paths}
        result.append(subject)
    return result


# ------------------------------------------------------------------------------ splits

SPLIT_NAMES = {"training": "train", "train": "train", "validation": "validation",
               "valid": "validation", "val": "validation", "inference": "test", "test": "test"}


def read_release_split(path: str | os.PathLike,
                       naming_path: str | os.PathLike | None = None) -> dict[str, str]:
    """The release's split file.

    Args:
        path: its CSV ("id,Training|Validation|Inference" lines).
        naming_path: its corresponding_naming.csv, to map the release's ids (HGG100) to
            BraTS 2018 ids (Brats18_TCIA08_319_1).

    Returns:
        {id: "train" | "validation" | "test"}.

    Raises:
        ValueError: naming the file and line of a malformed row or an unknown id.
    """
    path = pathlib.Path(path)
    names = read_release_naming(naming_path) if naming_path else None
    split = {}
    with open(path, newline="") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            if not row or not row[0].strip():
                continue
            if len(row) < 2 or row[1].strip().lower() not in SPLIT_NAMES:
                raise ValueError(f"{path}, line {number}: expected 'id,Training|Validation|"
                                 f"Inference', got {','.join(row)!r}.")
            sid = row[0].strip().rstrip("_")
            if names is not None:
                if sid not in names:
                    raise ValueError(f"{path}, line {number}: {sid} is not in {naming_path}.")
                sid = names[sid]
            split[sid] = SPLIT_NAMES[row[1].strip().lower()]
    return split


def read_release_naming(path: str | os.PathLike) -> dict[str, str]:
    """The release's corresponding_naming.csv.

    Args:
        path: the file.

    Returns:
        {release id (HGG1): BraTS 2018 id (Brats18_TCIA08_319_1)}.
    """
    mapping = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            folder = row["folder"].strip()
            mapping[row["name"].strip()] = folder.split("_", 1)[1] if "_" in folder else folder
    return mapping


def read_id_list(path: str | os.PathLike) -> list[str]:
    """A file of subject ids, one per line (blank lines and # comments ignored).

    Args:
        path: the file.

    Returns:
        The ids, in the file's order.
    """
    lines = pathlib.Path(path).read_text().splitlines()
    return [ln.split("#", 1)[0].strip() for ln in lines if ln.split("#", 1)[0].strip()]


def kfold_split(ids: list, fold: int = 0, folds: int = 3, seed: int = 0,
                fractions: tuple = (0.7, 0.1, 0.2)) -> dict[str, str]:
    """A seeded split of subject ids into training, validation and test.

    Args:
        ids: the subject ids.
        fold: which of the folds tests.
        folds: how many.
        seed: of the shuffles.
        fractions: of train, validation, test.

    Returns:
        {id: "train" | "validation" | "test"}.

    The ids are shuffled once with `seed`; fold f tests on the f-th block of
    round(fractions[2]·n) ids (blocks are disjoint while folds·fractions[2] <= 1), then the rest
    is shuffled again and round(fractions[1]·n) ids go to validation. The paper's 70/10/20 on
    the 285 BraTS 2018 subjects gives 199/29/57, as the release's split files.
    """
    ids = sorted(ids)
    if not 0 <= fold < folds:
        raise ValueError(f"fold must be in 0..{folds - 1}, got {fold}.")
    if abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"fractions must be non-negative and sum to 1, got {fractions}.")
    n = len(ids)
    n_test, n_val = int(fractions[2] * n + 0.5), int(fractions[1] * n + 0.5)
    order = np.random.default_rng(seed).permutation(n)
    start = (fold * n_test) % max(n, 1)
    test_idx = [order[(start + i) % n] for i in range(n_test)]
    rest = [i for i in order if i not in set(test_idx)]
    rest = list(np.random.default_rng([seed, fold]).permutation(rest))
    split = {ids[i]: "test" for i in test_idx}
    split.update({ids[i]: "validation" for i in rest[:n_val]})
    split.update({ids[i]: "train" for i in rest[n_val:]})
    return split


def apply_split(subjects: list[Subject], split: dict[str, str],
                source: str = "split") -> dict[str, list[Subject]]:
    """Subjects grouped by a split.

    Args:
        subjects: the dataset's.
        split: {id: "train" | "validation" | "test"}.
        source: the split's name in messages (e.g. its file).

    Returns:
        {"train": [...], "validation": [...], "test": [...]}, each sorted by id.

    Raises:
        ValueError: ids of the split that are not in the data.
    """
    by_id = {s.id: s for s in subjects}
    unknown = sorted(set(split) - set(by_id))
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise ValueError(f"{source} names {len(unknown)} subject(s) not found in the data: "
                         f"{shown}. Is it the split of another dataset (release ids need the "
                         "naming file)?")
    parts: dict[str, list] = {"train": [], "validation": [], "test": []}
    for sid, name in split.items():
        parts[name].append(by_id[sid])
    for members in parts.values():
        members.sort(key=lambda s: s.id)
    return parts
