"""Data: BraTS-like phantoms (`synthetic`), the tf.data pipeline (`pipeline`, `augment`)."""
