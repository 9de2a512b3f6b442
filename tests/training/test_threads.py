"""--intra_op_threads / --inter_op_threads: set before TensorFlow starts, said when too late."""
import subprocess
import sys


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


LATE = ("import tensorflow as tf\n"
        "from hved_tf.training.distribute import set_cpu_threads\n"
        "tf.constant(1.0) + 1.0\n"                 # TensorFlow has started
        "set_cpu_threads(0, 0)\n"                  # nothing asked: nothing said
        "set_cpu_threads(5, 0)\n"
        "print(tf.config.threading.get_intra_op_parallelism_threads())\n")


def test_too_late_is_a_warning():
    """In its own process: pytest's other tests may have reset TensorFlow's context."""
    done = subprocess.run([sys.executable, "-c", LATE], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "0"               # unchanged
    said = [line for line in done.stderr.splitlines() if "left out" in line]
    assert len(said) == 1 and "--intra_op_threads=5 left out" in said[0], done.stderr
