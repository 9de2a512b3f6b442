"""Whole-volume inference: window planning and stitching (`windows`), a model as a window
predictor with Monte-Carlo z samples (`predictor`), the one segmentation path (`segmenter`,
`exported`) and the loading of trained models and exports (`loading`)."""
from hved_tf.config import InferenceOptions
from hved_tf.inference.loading import TrainedModel, keras_segmenter, load_trained, open_segmenter
from hved_tf.inference.segmenter import KerasSegmenter, Segmentation
from hved_tf.inference.windows import plan_windows, sliding_window

__all__ = ["InferenceOptions", "TrainedModel", "keras_segmenter", "load_trained",
           "open_segmenter", "KerasSegmenter", "Segmentation", "plan_windows", "sliding_window"]
