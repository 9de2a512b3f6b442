"""Instance-wise scores as the BraTS 2025/2026 challenges compute them (`--lesion_protocol
brats2025`), through `panoptica` (Apache-2.0, the library the official `brats-evaluation`
package is built on; the `[brats]` extra installs it).

The settings are those of the official package's glioma configuration:
- regions whole tumour (labels 1, 2, 3 of BraTS 2023's convention), tumour core (1, 3) and
  enhancing tumour (3), each merged to one binary mask;
- instances: 26-connected components of prediction and truth, no dilation, no size threshold;
- matching: one-to-one, maximising the summed Dice of matched pairs, a pair counting when its
  Dice exceeds 1e-6;
- per region: true positives (matched pairs), false positives, false negatives; recognition
  quality RQ (the detection F1: tp / (tp + (fp + fn) / 2)); segmentation quality SQ, the mean
  Dice over matched pairs only (`lesion_dice` here), and the mean HD95 over them
  (`lesion_hd95`); panoptic quality PQ = SQ x RQ. With no match, SQ is 0 and HD95 infinite;
  with no instance on either side, both are NaN, as the official configuration says.

Distances are in mm, from arrays and voxel sizes in the same (RAS) axis order. The official
package, when given file paths, reads them with SimpleITK, whose arrays are in (z, y, x) order
while its voxel sizes are (x, y, z): on anisotropic grids it scales distances along the wrong
axes (docs/how-to/predict-and-evaluate.md shows it).
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import io
import warnings
from typing import Any, Sequence

import numpy as np

from hved_tf.modalities import REGIONS

PROTOCOL = "brats2025"          # its name for --lesion_protocol
MATCHING_THRESHOLD = 1e-6
# Our name -> panoptica's result key.
METRICS = {"lesion_dice": "sq_dsc", "lesion_hd95": "sq_hd95", "detection_f1": "rq",
           "pq": "pq_dsc", "tp": "tp", "fp": "fp", "fn": "fn"}


def _panoptica(module="panoptica"):
    """panoptica (or one of its modules), loaded on first use: its imports take 1.6 s (pandas
    among them) that the commands which do not score brats2025 should not pay."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError("--lesion_protocol brats2025 needs panoptica: pip install "
                         "'hved_tf[brats]'.") from None


@functools.lru_cache(maxsize=1)
def evaluator() -> Any:
    """The panoptica evaluator with the BraTS 2025 glioma settings (module docstring), made
    once.

    Returns:
        A `panoptica.Panoptica_Evaluator`.

    Raises:
        ValueError: panoptica is not installed (the [brats] extra).
    """
    pan = _panoptica()
    edges = _panoptica("panoptica.utils.edge_case_handling")
    merged = _panoptica("panoptica.utils.label_group").LabelMergeGroup
    groups = _panoptica("panoptica.utils.segmentation_class").SegmentationClassGroups(
        {name: merged(list(labels), single_instance=False) for name, labels in REGIONS.items()})
    pan.disable_citation_reminder()
    metrics = [pan.Metric.DSC, pan.Metric.HD95]

    def zero_tp(value):
        return edges.MetricZeroTPEdgeCaseHandling(
            empty_prediction_result=value, empty_reference_result=value,
            no_instances_result=edges.EdgeCaseResult.NAN, normal=value)

    edge_cases = edges.EdgeCaseHandler(
        listmetric_zeroTP_handling={pan.Metric.DSC: zero_tp(edges.EdgeCaseResult.ZERO),
                                    pan.Metric.HD95: zero_tp(edges.EdgeCaseResult.INF)},
        empty_list_std=edges.EdgeCaseResult.NAN)
    with contextlib.redirect_stdout(io.StringIO()):  # its notice that regions share labels
        return pan.Panoptica_Evaluator(
            expected_input=pan.InputType.SEMANTIC,
            instance_approximator=pan.ConnectedComponentsInstanceApproximator(),
            instance_matcher=pan.MaxBipartiteMatching(matching_metric=pan.Metric.DSC,
                                                      matching_threshold=MATCHING_THRESHOLD),
            edge_case_handler=edge_cases, segmentation_class_groups=groups,
            instance_metrics=metrics, global_metrics=metrics)


def panoptic_metrics(pred_labels: np.ndarray, true_labels: np.ndarray,
                     spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> dict[str, dict[str, float]]:
    """The BraTS 2025 instance-wise scores of each tumour region.

    Args:
        pred_labels: predicted training labels 0..3.
        true_labels: true ones, on the same grid.
        spacing: its voxel sizes (mm) along the array's axes.

    Returns:
        {region: {"lesion_dice", "lesion_hd95", "detection_f1", "pq", "tp", "fp", "fn"}}.
    """
    pred = np.asarray(pred_labels).astype(np.uint8)
    truth = np.asarray(true_labels).astype(np.uint8)
    if pred.shape != truth.shape:
        raise ValueError(f"Shapes differ: prediction {pred.shape}, truth {truth.shape}.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # panoptica's notices about empty inputs
        results = evaluator().evaluate(pred, truth, voxelspacing=tuple(map(float, spacing)),
                                       verbose=False)
    out = {}
    for region in REGIONS:
        values = results[region].to_dict()
        out[region] = {ours: float(values[theirs]) for ours, theirs in METRICS.items()}
    return out
