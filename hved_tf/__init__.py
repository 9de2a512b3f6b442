"""hved_tf: U-HVED (Dorent et al., MICCAI 2019) in TensorFlow 2 / Keras 3."""
__version__ = "0.1.0"
