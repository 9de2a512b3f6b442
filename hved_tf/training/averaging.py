"""The moving average of the weights (`--ema_momentum`), swapped in where the model is judged.

With `--ema_momentum=m` > 0 the optimiser is Keras's Adam with `use_ema`: after every step it
updates, inside the compiled step (no host round-trip), a_t = m·a_(t-1) + (1 - m)·w_t per
trainable variable (a_1 = w_1). Training itself goes on with the raw weights w. Validation
(hved_tf.training.callbacks.Validation) scores and saves the averages instead: inside
`averaged_weights(model)` the model's variables hold a, and leaving it puts w back, so that the
epoch's resume backup (written after validation) keeps the raw weights and a resumed run trains
on as an uninterrupted one. At the end of `fit`, Keras writes the averages into the model
(`finalize_variable_values`): model.weights.h5 and the test use them. Off (0) by default: the
release had no averaging.

Keras keeps the averages in the optimiser (`_model_variables_moving_average`, in the order of
its `_trainable_variables`); these two private attributes are the one place this module leans
on Keras internals (Keras's own SwapEMAWeights callback reads the same), and
tests/training/test_averaging.py checks the values against a NumPy average, so that a change
in Keras fails there.
"""
from __future__ import annotations

import contextlib


def _ema_optimizer(model):
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)      # a loss-scale wrapper
    return optimizer if getattr(optimizer, "use_ema", False) else None


def uses_averaging(model):
    return _ema_optimizer(model) is not None


@contextlib.contextmanager
def averaged_weights(model):
    """Inside: the model's trainable variables hold their moving averages (nothing changes for
    a model trained without averaging, or before its first step); after: the raw weights."""
    optimizer = _ema_optimizer(model)
    averages = getattr(optimizer, "_model_variables_moving_average", None) or []
    if optimizer is None or not averages or int(optimizer.iterations.numpy()) == 0:
        yield
        return
    pairs = [(v, a) for v, a in zip(optimizer._trainable_variables, averages) if a is not None]
    raw = [v.numpy() for v, _ in pairs]
    try:
        for variable, average in pairs:
            variable.assign(average)
        yield
    finally:
        for (variable, _), value in zip(pairs, raw):
            variable.assign(value)
