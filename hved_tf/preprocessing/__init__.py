"""Preprocessing of the release (NumPy/SciPy, no TensorFlow): crop, labels, Nyúl, whitening."""
from hved_tf.preprocessing.crop import CropBox, crop, crop_box, uncrop
from hved_tf.preprocessing.labels import from_training_labels, to_training_labels
from hved_tf.preprocessing.normalise import normalise_intensities

__all__ = ["CropBox", "crop", "crop_box", "uncrop", "normalise_intensities",
           "to_training_labels", "from_training_labels"]
