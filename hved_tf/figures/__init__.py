"""Pictures of subjects and of results, drawn with matplotlib (files only, no window).

- `slices`: gray levels, the brain and tumour, plane slices with orientation marks, overlays
  (NumPy);
- `subject`: a subject's labelled figure (`subject_columns`, `subject_figure`);
- `table`: Table 1 at a glance (`dice_heatmap`);
- `output`: a figure to pixels (`figure_pixels`) or to a PNG file (`save_figure`).
"""
from hved_tf.figures.output import figure_pixels, save_figure
from hved_tf.figures.slices import (CLASS_COLOURS, CLASS_LEGEND, PLANES, foreground, normalise,
                                    overlay, overlay_rgba, plane_slice, tumour_centre)
from hved_tf.figures.subject import PANEL_PX, Column, subject_columns, subject_figure
from hved_tf.figures.table import dice_heatmap

__all__ = ["figure_pixels", "save_figure", "CLASS_COLOURS", "CLASS_LEGEND", "PLANES",
           "foreground", "normalise", "overlay", "overlay_rgba", "plane_slice",
           "tumour_centre", "PANEL_PX", "Column", "subject_columns", "subject_figure",
           "dice_heatmap"]
