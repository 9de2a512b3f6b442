"""A quiet start for the command lines: each imports this module first, before TensorFlow.

While its libraries load, TensorFlow 2.21 prints, before its C++ logging is set up (so that no
environment variable silences them), "All log messages before absl::InitializeLog() is called
are written to STDERR", oneDNN and CUDA notices, and on a machine without a GPU, at the first
device probe, "failed call to cuInit: ... CUDA error" (an E-level line that reads like a fault
although nothing is wrong). None of them is something a user can act on.

Importing this module loads TensorFlow and probes its devices with the process's standard error
pointed at /dev/null, restores it, and then hides TensorFlow's later C++ info and warning lines
(TF_CPP_MIN_LOG_LEVEL=2: errors still show) and its Python logger's warnings (such as the
renamed input names of an export). With absl's `--verbosity` (or `-v`) on the command line, or
HVED_VERBOSE=1, nothing is hidden.
"""
import os
import sys


def _verbose(argv):
    return bool(os.environ.get("HVED_VERBOSE")) or any(
        a == "-v" or a.startswith(("-v=", "--v=", "--verbosity")) for a in argv)


VERBOSE = _verbose(sys.argv[1:])

if not VERBOSE and "tensorflow" not in sys.modules:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    _saved = os.dup(2)
    _null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(_null, 2)
    try:
        import tensorflow as tf
        tf.config.list_physical_devices()          # the CUDA probe, while it cannot print
    finally:
        os.dup2(_saved, 2)
        os.close(_saved)
        os.close(_null)
    tf.get_logger().setLevel("ERROR")
