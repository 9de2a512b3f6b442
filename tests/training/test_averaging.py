"""--ema_momentum: the moving average of the weights, checked against a NumPy recursion of the
raw weights (a_1 = w_1, a_t = m·a_(t-1) + (1 - m)·w_t)."""
import numpy as np
import pytest

from test_train import _tiny_config


def _numpy_average(history, momentum):
    average = [np.array(w) for w in history[0]]
    for weights in history[1:]:
        average = [momentum * a + (1 - momentum) * w for a, w in zip(average, weights)]
    return average


def test_averaged_weights_swaps_in_the_numpy_average_and_puts_the_raw_back():
    import keras
    from hved_tf.training.averaging import averaged_weights, uses_averaging
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(1)])
    momentum = 0.7
    model.compile(optimizer=keras.optimizers.Adam(0.1, use_ema=True, ema_momentum=momentum),
                  loss="mse")
    assert uses_averaging(model)
    history, seen = [], {}

    class Probe(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raw = [v.numpy().copy() for v in self.model.trainable_variables]
            history.append(raw)
            if batch == 4:
                with averaged_weights(self.model):
                    seen["inside"] = [v.numpy().copy() for v in self.model.trainable_variables]
                seen["after"] = [v.numpy().copy() for v in self.model.trainable_variables]
                seen["raw"] = raw

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 1))
    model.fit(x, y, batch_size=1, epochs=1, steps_per_epoch=6, shuffle=False, verbose=0,
              callbacks=[Probe()])
    expected = _numpy_average(history[:5], momentum)
    for got, want, raw in zip(seen["inside"], expected, seen["raw"]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert not np.allclose(got, raw)                 # the average is not the raw weights
    for got, raw in zip(seen["after"], seen["raw"]):
        np.testing.assert_array_equal(got, raw)


def test_without_averaging_nothing_is_swapped():
    import keras
    from hved_tf.training.averaging import averaged_weights, uses_averaging
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    model.fit(np.ones((2, 3)), np.ones((2, 2)), epochs=1, verbose=0)
    before = [v.numpy().copy() for v in model.trainable_variables]
    assert not uses_averaging(model)
    with averaged_weights(model):
        inside = [v.numpy().copy() for v in model.trainable_variables]
    for a, b in zip(before, inside):
        np.testing.assert_array_equal(a, b)


def _weights_reader(config):
    """path -> the trainable weights a weights file holds (one model built, refilled)."""
    from hved_tf.training.app import _build
    from hved_tf.training.distribute import make_strategy
    model = _build(config, make_strategy("default"))

    def read(path):
        model.load_weights(path)
        return [v.numpy() for v in model.trainable_variables]
    return read


def test_a_run_with_averaging_keeps_raw_checkpoints_and_ends_on_their_average(tmp_path):
    """Step checkpoints (validation every step) hold the raw weights w_1..w_4; the final
    weights are their moving average, and so are the weights validation saved as best."""
    import dataclasses
    import json
    from hved_tf.training.app import run
    run_dir = tmp_path / "run"
    config = _tiny_config(run_dir, steps=4)
    config.validation_every, config.keep_checkpoints = 1, 4
    config.optim = dataclasses.replace(config.optim, ema_momentum=0.6, learning_rate=1e-2)
    run(config.validate())
    read_weights = _weights_reader(config)
    raw = [read_weights(run_dir / "checkpoints" / f"step_{k:08d}.weights.h5")
           for k in range(1, 5)]
    final = read_weights(run_dir / "model.weights.h5")
    for got, want in zip(final, _numpy_average(raw, 0.6)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert any(not np.allclose(a, b) for a, b in zip(final, raw[-1]))
    best_step = json.loads((run_dir / "best.json").read_text())["step"]
    best = read_weights(run_dir / "best.weights.h5")
    for got, want in zip(best, _numpy_average(raw[:best_step], 0.6)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5])
def test_ema_momentum_out_of_range_is_refused(value):
    import dataclasses
    from hved_tf.config import OptimConfig
    with pytest.raises(ValueError, match="--ema_momentum must be in"):
        dataclasses.replace(OptimConfig(), ema_momentum=value).validate()
