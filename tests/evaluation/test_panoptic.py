"""--lesion_protocol brats2025 (hved_tf.evaluation.panoptic) against the official BraTS
2025/2026 evaluation package (brats-evaluation, AGPL-3.0: run here only, never imported by
hved_tf), on constructed cases; and HD95 on an anisotropic grid against its closed form."""
import math

import nibabel as nib
import numpy as np
import pytest

panoptica = pytest.importorskip(
    "panoptica", reason="panoptica is not installed (pip install -e '.[test]' brings it)")
official = pytest.importorskip(
    "brats_evaluation.evaluation",
    reason="brats-evaluation is not installed (pip install -e '.[test]' brings it)")

from hved_tf.evaluation.panoptic import METRICS, panoptic_metrics  # noqa: E402

SHAPE = (40, 36, 32)
GROUPS = {"whole_tumour": "wt", "tumour_core": "tc", "enhancing": "et"}


def blob(label, lo, hi, value):
    label[tuple(slice(a, b) for a, b in zip(lo, hi))] = value


def case(name):
    """(prediction, truth) training labels 0..3 (1 necrotic, 2 oedema, 3 enhancing)."""
    truth = np.zeros(SHAPE, np.uint8)
    blob(truth, (5, 5, 5), (15, 15, 15), 2)
    blob(truth, (8, 8, 8), (12, 12, 12), 3)
    blob(truth, (22, 20, 18), (30, 28, 26), 2)
    blob(truth, (24, 22, 20), (27, 25, 23), 1)
    pred = truth.copy()
    if name == "spurious lesions":
        blob(pred, (34, 2, 2), (38, 6, 6), 2)             # one for WT
        blob(pred, (2, 30, 27), (4, 33, 30), 3)           # one more for WT, TC and ET
        pred[5:15, 5:15, 5:7] = 0                         # and a less exact first lesion
    elif name == "missed lesions":
        pred[20:32, 18:30, 16:28] = 0                     # the second lesion not found
        blob(pred, (9, 9, 9), (11, 11, 11), 1)
    elif name == "touching lesions":
        # two predicted blobs sharing a face: one 26-connected instance against two truths
        truth = np.zeros(SHAPE, np.uint8)
        blob(truth, (5, 5, 5), (12, 12, 12), 3)
        blob(truth, (13, 5, 5), (20, 12, 12), 3)
        pred = np.zeros(SHAPE, np.uint8)
        blob(pred, (5, 5, 5), (13, 12, 12), 3)
        blob(pred, (13, 5, 5), (21, 12, 11), 1)
    elif name == "empty truth":
        pred = truth.copy()
        truth = np.zeros(SHAPE, np.uint8)
    elif name == "empty both":
        pred = np.zeros(SHAPE, np.uint8)
        truth = np.zeros(SHAPE, np.uint8)
    elif name == "empty prediction":
        pred = np.zeros(SHAPE, np.uint8)
    return pred, truth


@pytest.fixture(scope="module")
def official_evaluator():
    from importlib.resources import files

    config = files("brats_evaluation").joinpath("configs", "config_gli.yaml")
    return panoptica.Panoptica_Evaluator.load_from_config(str(config))


def official_scores(evaluator, pred, truth, folder, zooms=(1.0, 1.0, 1.0)):
    """The official package's scores of NIfTI files, as its command computes them."""
    affine = np.diag([*zooms, 1.0])
    paths = []
    for name, label in (("pred", pred), ("truth", truth)):
        paths.append(str(folder / f"{name}.nii.gz"))
        nib.save(nib.Nifti1Image(label.astype(np.uint8), affine), paths[-1])
    result = official.evaluate_single_exam(paths[0], paths[1], "case", evaluator)
    assert "error" not in result, result
    return result


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b or abs(a - b) <= 1e-6


@pytest.mark.parametrize("name", ["spurious lesions", "missed lesions", "touching lesions",
                                  "empty truth", "empty both", "empty prediction"])
def test_agrees_with_the_official_package(name, official_evaluator, tmp_path):
    pred, truth = case(name)
    ours = panoptic_metrics(pred, truth)
    theirs = official_scores(official_evaluator, pred, truth, tmp_path)
    for region, group in GROUPS.items():
        for metric, key in METRICS.items():
            assert same(ours[region][metric], float(theirs[group][key])), \
                (name, region, metric, ours[region][metric], theirs[group][key])


def test_the_cases_cover_what_they_say():
    """The constructed cases do hold what they are named for (the comparison would pass on
    cases that test nothing otherwise)."""
    spurious = panoptic_metrics(*case("spurious lesions"))
    assert spurious["whole_tumour"]["fp"] == 2 and spurious["enhancing"]["fp"] == 1
    assert 0 < spurious["whole_tumour"]["lesion_dice"] < 1
    missed = panoptic_metrics(*case("missed lesions"))
    assert missed["whole_tumour"]["fn"] == 1 and missed["whole_tumour"]["tp"] == 1
    touching = panoptic_metrics(*case("touching lesions"))
    # ET: one predicted instance, two true ones: one matched, one missed
    assert touching["enhancing"]["tp"] == 1 and touching["enhancing"]["fn"] == 1
    assert touching["whole_tumour"]["tp"] == 1 and touching["whole_tumour"]["fn"] == 1
    empty = panoptic_metrics(*case("empty truth"))
    assert empty["whole_tumour"]["fp"] == 2 and empty["whole_tumour"]["detection_f1"] == 0
    assert math.isinf(empty["whole_tumour"]["lesion_hd95"])
    both = panoptic_metrics(*case("empty both"))
    assert math.isnan(both["enhancing"]["lesion_dice"]) and both["enhancing"]["tp"] == 0


def test_detection_f1_and_pq_follow_their_definitions():
    for name in ("spurious lesions", "missed lesions", "touching lesions"):
        for values in panoptic_metrics(*case(name)).values():
            tp, fp, fn = values["tp"], values["fp"], values["fn"]
            assert values["detection_f1"] == pytest.approx(tp / (tp + 0.5 * (fp + fn)))
            assert values["pq"] == pytest.approx(values["detection_f1"] * values["lesion_dice"])


def test_hd95_on_an_anisotropic_grid(official_evaluator, tmp_path):
    """1x1x3 mm voxels; truth on slices 4-5, prediction on 5-6 of the same square: the masks
    are their own surfaces, half of each at 0 and half at one slice (3 mm) from the other, so
    HD95 is 3 mm. Along the wrong axes (the official command given files) it is 1 mm."""
    truth = np.zeros((30, 30, 12), np.uint8)
    truth[10:20, 10:20, 4:6] = 2
    pred = np.zeros_like(truth)
    pred[10:20, 10:20, 5:7] = 2
    ours = panoptic_metrics(pred, truth, spacing=(1.0, 1.0, 3.0))
    assert ours["whole_tumour"]["lesion_hd95"] == pytest.approx(3.0)
    assert ours["whole_tumour"]["lesion_dice"] == pytest.approx(0.5)
    # the same arrays with the axes in another order and the sizes with them: the same HD95
    moved = panoptic_metrics(np.moveaxis(pred, 2, 0), np.moveaxis(truth, 2, 0),
                             spacing=(3.0, 1.0, 1.0))
    assert moved["whole_tumour"]["lesion_hd95"] == pytest.approx(3.0)
    theirs = official_scores(official_evaluator, pred, truth, tmp_path, zooms=(1.0, 1.0, 3.0))
    assert float(theirs["wt"]["sq_hd95"]) == pytest.approx(1.0)    # docs/how-to: the difference


def test_without_panoptica_the_error_says_what_to_install(monkeypatch):
    import importlib

    from hved_tf.evaluation import panoptic

    def missing(name):
        raise ImportError(name)

    panoptic.evaluator.cache_clear()
    monkeypatch.setattr(importlib, "import_module", missing)
    try:
        with pytest.raises(ValueError, match=r"pip install 'hved_tf\[brats\]'"):
            panoptic_metrics(np.zeros((4, 4, 4)), np.zeros((4, 4, 4)))
    finally:
        monkeypatch.undo()
        panoptic.evaluator.cache_clear()
