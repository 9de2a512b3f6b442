"""--intra_op_threads / --inter_op_threads: set before TensorFlow starts, said when too late."""
import logging
import subprocess
import sys

import tensorflow as tf

from hved_tf.training.distribute import set_cpu_threads

CHILD = ("import hved_tf.train  # noqa: F401  (all the training program imports)\n"
         "import tensorflow as tf\n"
         "from hved_tf.training.distribute import set_cpu_threads\n"
         "set_cpu_threads({intra}, {inter})\n"
         "tf.constant(1.0) + 1.0\n"
         "print(tf.config.threading.get_intra_op_parallelism_threads(),"
         " tf.config.threading.get_inter_op_parallelism_threads())\n")


def _child(intra, inter):
    done = subprocess.run([sys.executable, "-c", CHILD.format(intra=intra, inter=inter)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-2:]


def test_a_fresh_process_takes_the_threads():
    assert _child(1, 3) == ["1", "3"]


def test_zero_leaves_tensorflow_its_choice():
    assert _child(0, 0) == ["0", "0"]        # TensorFlow's "0": one thread per core


def test_too_late_is_a_warning(caplog):
    tf.constant(1.0) + 1.0                   # TensorFlow runs in this process
    current = tf.config.threading.get_intra_op_parallelism_threads()
    logger = logging.getLogger("hved_tf")     # the programs' logging stops propagation:
    logger.addHandler(caplog.handler)         # listen on hved_tf's logger itself
    try:
        with caplog.at_level(logging.WARNING, logger="hved_tf"):
            set_cpu_threads(current, 0)      # nothing to change: nothing said
            assert not caplog.records
            set_cpu_threads(current + 5, 0)
    finally:
        logger.removeHandler(caplog.handler)
    assert "--intra_op_threads=%d left out" % (current + 5) in caplog.text
    assert tf.config.threading.get_intra_op_parallelism_threads() == current
