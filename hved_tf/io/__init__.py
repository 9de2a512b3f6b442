"""NIfTI I/O and dataset discovery: `hved_tf.io.nifti`, `hved_tf.io.datasets`."""
