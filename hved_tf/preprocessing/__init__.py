"""Preprocessing of the release (NumPy/SciPy, no TensorFlow): crop, Nyúl standardisation,
whitening. The TensorFlow twin of this chain, for exports, is `hved_tf.serving.graph`."""
from hved_tf.preprocessing.crop import CropBox, crop, crop_box, uncrop
from hved_tf.preprocessing.normalise import normalise_intensities

__all__ = ["CropBox", "crop", "crop_box", "uncrop", "normalise_intensities"]
