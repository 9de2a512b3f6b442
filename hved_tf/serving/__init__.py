"""Serving: the SavedModel export (`export`) and the TensorFlow twin of the preprocessing chain
it runs in its graph (`graph`)."""
