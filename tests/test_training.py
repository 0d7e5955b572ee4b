import os
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import numpyro.distributions as dist
import optax
import pytest

import sbi_kit as sk
from sbi_kit.training import train
from tests.inference.test_method import GaussianNPE


class _Line(sk.estimators.Standardizer):
    """y = loc + scale·x as a tiny trainable model (reuses Standardizer's two arrays)."""


def _regression_loss(net, batch, key):
    x, y = batch
    return (net.loc + net.scale * x[:, 0] - y[:, 0]) ** 2


def test_train_fits_a_line_and_stops_early():
    x = jax.random.normal(jax.random.key(0), (1000, 1))
    y = 2.0 * x + 1.0
    nets = _Line(jnp.zeros((1, 1)), jnp.ones((1, 1)))  # leading ensemble axis of size 1
    config = sk.Training(learning_rate=0.05, batch_size=100, max_epochs=500, patience=5)
    best, history = train(jax.random.key(1), nets, _regression_loss, (x, y), config, progress=False)
    np.testing.assert_allclose(best.loc[0, 0], 1.0, atol=1e-2)
    np.testing.assert_allclose(best.scale[0, 0], 2.0, atol=1e-2)
    assert history.stop_reason == "converged" and len(history.train_loss) < 500
    assert history.num_train == 900 and history.num_validation == 100


def test_validation_repeats_average_the_noise_of_a_random_loss():
    """A loss whose value is pure noise (a standard normal per example, plus 0 · parameters):
    over 20 training keys, the validation loss with ``validation_repeats=16`` spreads about
    1/4 as much as with one draw (sd ≈ 1/√(100 · R) over the 100 held-out examples)."""

    def noise_loss(net, batch, key):
        x, _ = batch
        return jax.random.normal(key, (x.shape[0],)) + 0.0 * net.loc[0] * x[:, 0]

    x = jnp.ones((1000, 1))
    nets = _Line(jnp.zeros((1, 1)), jnp.ones((1, 1)))
    spread = {}
    for repeats in (1, 16):
        config = sk.Training(max_epochs=1, validation_repeats=repeats)
        values = [
            train(
                jax.random.key(i),
                nets,
                noise_loss,
                (x, x),
                config,
                progress=False,
                reuse=("noise", repeats),
            )[1].validation_loss[0]
            for i in range(20)
        ]
        spread[repeats] = float(np.std(values))
    assert 0.05 < spread[1] < 0.2, spread
    assert spread[16] < 0.4 * spread[1], spread


def test_ema_returns_the_moving_average_of_the_parameters():
    """With ``ema_decay`` the kept parameters are the (bias-corrected) moving average: a line
    fit still converges (decay 0.9: loc → 1, scale → 2); and after one epoch of 9 steps with
    decay 0.9999 the average is close to the plain mean of the 9 iterates, so it lies between
    the start (0) and the last iterate, and carries no weight on the zero it starts from (an
    uncorrected average would still be within 0.1 % of 0)."""
    x = jax.random.normal(jax.random.key(0), (1000, 1))
    y = 2.0 * x + 1.0
    nets = _Line(jnp.zeros((1, 1)), jnp.ones((1, 1)))
    config = sk.Training(learning_rate=0.05, batch_size=100, max_epochs=300, ema_decay=0.9)
    best, _ = train(jax.random.key(1), nets, _regression_loss, (x, y), config, progress=False)
    np.testing.assert_allclose([best.loc[0, 0], best.scale[0, 0]], [1.0, 2.0], atol=2e-2)
    one_epoch = dict(learning_rate=0.05, batch_size=100, max_epochs=1)
    raw, _ = train(
        jax.random.key(1), nets, _regression_loss, (x, y), sk.Training(**one_epoch), progress=False
    )
    slow = sk.Training(**one_epoch, ema_decay=0.9999)
    averaged, _ = train(jax.random.key(1), nets, _regression_loss, (x, y), slow, progress=False)
    last, mean = float(raw.loc[0, 0]), float(averaged.loc[0, 0])
    assert last > 0.2, last  # nine Adam steps of 0.05 from 0 towards 1
    assert 0.3 * last < mean < 0.9 * last, (mean, last)


def test_weight_decay_shrinks_every_parameter_by_learning_rate_times_decay():
    """AdamW's decoupled decay: with a zero gradient one step moves each parameter by exactly
    ``-learning_rate * weight_decay * parameter``; with ``weight_decay=0`` (the default) the
    optimiser is plain Adam and leaves it unchanged."""
    params = {"w": jnp.array([1.0, -2.0, 4.0]), "b": jnp.array(0.5)}
    zero = jax.tree_util.tree_map(jnp.zeros_like, params)
    for decay, factor in ((0.0, 1.0), (0.5, 1.0 - 0.01 * 0.5), (2.0, 1.0 - 0.01 * 2.0)):
        opt = sk.Training(learning_rate=0.01, weight_decay=decay).optimizer()
        updates, _ = opt.update(zero, opt.init(params), params)
        moved = optax.apply_updates(params, updates)
        for name in params:
            np.testing.assert_allclose(moved[name], factor * params[name], rtol=1e-6)


def _constant_step_loss(threshold: float):
    """A loss whose gradient is 1 everywhere (so Adam moves ``w`` by ``-learning_rate`` times
    the schedule's scale each step) and whose value is 0 until ``w <= threshold``, then -1:
    the validation loss improves only at the epoch that crosses the threshold."""

    def loss(w, batch, key):
        value = jnp.where(w[0] <= threshold, -1.0, 0.0)
        step = w[0] - jax.lax.stop_gradient(w[0])
        return jnp.broadcast_to(jax.lax.stop_gradient(value) + step, batch[0].shape[:1])

    return loss


def test_learning_rate_is_reduced_on_plateaus_and_the_last_plateau_stops():
    """Three steps per epoch of exactly -1/3 × scale each (lr 1/3, gradient 1). Without a
    schedule w is -(e + 1) after epoch e and first passes -4.2 at epoch 4. With
    ``lr_plateau_steps=5`` (rounded up to 2 epochs of 3 steps) the rate halves after epochs 2
    and 4 (two epochs each without a better loss), so w is -1, -2, -3, -3.5, -4, -4.25: the
    crossing moves to epoch 5; after the second reduction (``lr_reductions=2``) the next
    plateau (epochs 6, 7) ends training. (``lr_stop_without_gain=False``: the first reduction
    brings no better loss before the next plateau, which would otherwise end training; the
    next test.)"""
    data = (jnp.zeros((10, 1)),)  # 9 for training (three batches of 3), 1 for validation
    loss = _constant_step_loss(-4.2)
    base = dict(learning_rate=1 / 3, batch_size=3, max_epochs=50, patience=30, clip_norm=None)
    w0 = jnp.zeros((1, 1))
    _, plain = train(jax.random.key(0), w0, loss, data, sk.Training(**base), progress=False)
    assert plain.best_epoch == 4 and plain.learning_rate_reductions == ()
    config = sk.Training(**base, lr_plateau_steps=5, lr_reductions=2, lr_stop_without_gain=False)
    best, history = train(jax.random.key(0), w0, loss, data, config, progress=False)
    assert history.learning_rate_reductions == (2, 4)
    assert history.best_epoch == 5 and len(history.train_loss) == 8
    assert history.stop_reason == "converged"
    np.testing.assert_allclose(float(best[0, 0]), -4.25, rtol=1e-4)  # Adam: 1 - O(1e-5)
    # a history survives its dict form, and one saved before the schedule existed loads
    assert sk.training.History.from_dict(history.to_dict()) == history
    old = {k: v for k, v in history.to_dict().items() if k != "learning_rate_reductions"}
    assert sk.training.History.from_dict(old).learning_rate_reductions == ()


def test_a_plateau_after_a_reduction_without_gain_stops():
    """The schedule of the test above with ``lr_stop_without_gain`` (the default): the loss
    improves at epoch 0 only until the crossing, so after the reduction at epoch 2 nothing better
    comes in the next plateau (epochs 3, 4) and training ends at epoch 4, keeping epoch 0's
    parameters, although two reductions were allowed. A reduction that is followed by a better
    loss does not stop it: a threshold reached at epoch 3 (w = -3.5 after the halving) moves the
    best epoch there, and training goes on to the second reduction and its plateau."""
    data = (jnp.zeros((10, 1)),)
    base = dict(learning_rate=1 / 3, batch_size=3, max_epochs=50, patience=30, clip_norm=None)
    config = sk.Training(**base, lr_plateau_steps=5, lr_reductions=2)
    assert config.lr_stop_without_gain
    w0 = jnp.zeros((1, 1))
    best, history = train(
        jax.random.key(0), w0, _constant_step_loss(-4.2), data, config, progress=False
    )
    assert history.learning_rate_reductions == (2,)
    assert history.best_epoch == 0 and len(history.train_loss) == 5
    assert history.stop_reason == "converged"
    np.testing.assert_allclose(float(best[0, 0]), -1.0, rtol=1e-4)
    _, gained = train(
        jax.random.key(0), w0, _constant_step_loss(-3.4), data, config, progress=False
    )
    assert gained.best_epoch == 3 and gained.learning_rate_reductions == (2, 5)
    assert len(gained.train_loss) == 8 and gained.stop_reason == "converged"


def test_a_schedule_that_never_fires_trains_as_without_one():
    """A plateau of ``patience`` epochs or more (15 steps: 5 epochs of 3 batches) never reduces
    the rate before ``patience`` stops: the same epochs and parameters as no schedule."""
    x = jnp.linspace(-1, 1, 200)[:, None]
    y = 2.0 * x + 0.3
    nets = _Line(jnp.zeros((1, 1)), jnp.ones((1, 1)))
    base = dict(learning_rate=0.05, batch_size=50, max_epochs=40, patience=5)
    runs = [
        train(jax.random.key(2), nets, _regression_loss, (x, y), config, progress=False)
        for config in (sk.Training(**base), sk.Training(**base, lr_plateau_steps=15))
    ]
    (a, ha), (b, hb) = runs
    assert ha.stop_reason == "converged" and ha.best_epoch == 7  # patience ended it at 13
    assert ha.train_loss == hb.train_loss and ha.best_epoch == hb.best_epoch
    assert hb.learning_rate_reductions == ()
    np.testing.assert_array_equal(a.scale, b.scale)
    # 12 steps are 4 epochs: that plateau (epochs 8-11) reduces the rate once
    config = sk.Training(**base, lr_plateau_steps=12)
    _, hc = train(jax.random.key(2), nets, _regression_loss, (x, y), config, progress=False)
    assert hc.learning_rate_reductions == (11,)


def test_non_finite_loss_stops_and_keeps_best_parameters():
    x = jnp.linspace(-1, 1, 400)[:, None]
    y = 2.0 * x

    def loss(net, batch, key):  # diverges once scale passes 1.5
        base = _regression_loss(net, batch, key)
        return jnp.where(net.scale[0] > 1.5, jnp.nan, base)

    nets = _Line(jnp.zeros((1, 1)), jnp.ones((1, 1)))
    config = sk.Training(learning_rate=0.05, batch_size=50, max_epochs=200, patience=50)
    with pytest.warns(RuntimeWarning, match="NaN or inf; training stopped"):
        best, history = train(jax.random.key(1), nets, loss, (x, y), config, progress=False)
    assert history.stop_reason == "non-finite"
    assert np.isfinite(float(best.scale[0, 0])) and float(best.scale[0, 0]) <= 1.5
    assert len(history.train_loss) < 200


def test_training_rejects_bad_settings():
    with pytest.raises(ValueError, match="validation_fraction"):
        sk.Training(validation_fraction=1.5)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        sk.Training(batch_size=0)


SHARDED = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, json, sys
    import sbi_kit as sk
    from sbi_kit.training import train
    from tests.test_training import _Line, _regression_loss
    x = jax.random.normal(jax.random.key(0), (1000, 1))
    y = 2.0 * x + 1.0
    nets = _Line(jnp.zeros((1, 1)), jnp.ones((1, 1)))
    config = sk.Training(learning_rate=0.05, batch_size=100, max_epochs=20, patience=50)
    best, h = train(jax.random.key(1), nets, _regression_loss, (x, y), config, progress=False)
    print(json.dumps({"devices": jax.device_count(), "loc": float(best.loc[0, 0]),
                      "val": h.validation_loss}))
    """
)


def _run_with_devices(n):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", SHARDED],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_sharded_training_on_four_devices_matches_one_device():
    one = _run_with_devices(1)
    four = _run_with_devices(4)
    assert one["devices"] == 1 and four["devices"] == 4
    # same batches, same updates: losses agree up to floating-point reduction order
    np.testing.assert_allclose(four["val"], one["val"], rtol=1e-4, atol=1e-6)


class _DivergingNPE(GaussianNPE):
    """The toy method of tests/inference/test_method.py, with a loss that turns NaN once a
    batch's mean loss drops below 1.5: after a few finite epochs (it starts near 2.7)."""

    def loss(self, net, theta, x, key):
        losses = super().loss(net, theta, x, key)
        return jnp.where(jnp.mean(losses) < 1.5, jnp.nan, losses)


def test_fit_whose_loss_turns_non_finite_stops_keeps_the_best_epoch_and_says_so(
    gaussian_simulator,
):
    """Through the public ``fit``: the warning, the history, and the kept parameters, which are
    bit for bit those of a run stopped by ``max_epochs`` right after the best epoch."""
    theta, x = sk.simulate(jax.random.key(0), gaussian_simulator, 1000)
    config = dict(learning_rate=3e-3, batch_size=100, patience=50)
    method = _DivergingNPE(training=sk.Training(max_epochs=40, **config))
    with pytest.warns(RuntimeWarning, match=r"the loss became NaN or inf; training stopped"):
        post = method.fit(
            jax.random.key(1), theta, x, prior=gaussian_simulator.prior, progress=False
        )
    h = post.history
    assert h.stop_reason == sk.StopReason.NON_FINITE
    val = np.asarray(h.validation_loss)
    finite = np.isfinite(val) & np.isfinite(h.train_loss)
    assert finite[:2].all() and not finite[-1], h  # finite epochs first, then it diverged
    assert len(val) < 40  # it stopped at once instead of running to max_epochs
    assert finite[: h.best_epoch + 1].all() and h.best_epoch == int(np.argmin(val[finite])), h
    kept = eqx.filter(post.net, eqx.is_inexact_array)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(kept))

    short = _DivergingNPE(training=sk.Training(max_epochs=h.best_epoch + 1, **config))
    ref = short.fit(jax.random.key(1), theta, x, prior=gaussian_simulator.prior, progress=False)
    assert ref.history.stop_reason == sk.StopReason.MAX_EPOCHS
    assert ref.history.validation_loss == h.validation_loss[: h.best_epoch + 1]
    for a, b in zip(
        jax.tree_util.tree_leaves(kept),
        jax.tree_util.tree_leaves(eqx.filter(ref.net, eqx.is_inexact_array)),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    samples = post.sample(jax.random.key(2), jnp.array([0.5, -0.3]), 100)
    assert np.isfinite(np.asarray(samples)).all()


def test_a_reuse_key_runs_the_compiled_epoch_again_without_tracing():
    """With the same ``reuse`` key, settings and sizes, a second ``train`` traces nothing (the
    loss's Python body does not run again); other sizes are traced anew."""
    traced = []

    def loss(net, batch, key):
        traced.append(1)
        return _regression_loss(net, batch, key)

    config = sk.Training(learning_rate=0.05, batch_size=50, max_epochs=3)
    x = jax.random.normal(jax.random.key(0), (400, 1))
    nets = _Line(jnp.zeros((1, 1)), jnp.ones((1, 1)))
    first, _ = train(jax.random.key(1), nets, loss, (x, 2 * x), config, progress=False, reuse="a")
    assert traced, "the first call traces the loss"
    traced.clear()
    again, _ = train(jax.random.key(1), nets, loss, (x, 2 * x), config, progress=False, reuse="a")
    assert not traced
    np.testing.assert_array_equal(again.loc, first.loc)
    train(jax.random.key(1), nets, loss, (x[:300], 2 * x[:300]), config, progress=False, reuse="a")
    assert traced, "other data sizes need another program"


def test_fitting_the_same_method_twice_compiles_no_training_program_again(gaussian_simulator):
    """The second ``fit`` of one method on data of the same shapes (another key, other values)
    compiles nothing: the epoch and validation programs of the first are reused."""
    theta, x = sk.simulate(jax.random.key(0), gaussian_simulator, 500)
    method = GaussianNPE(width=8, training=sk.Training(max_epochs=2))
    method.fit(jax.random.key(1), theta, x, prior=gaussian_simulator.prior, progress=False)
    shifted = theta + 1.0
    compiled = []

    def listener(event, duration, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            compiled.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        method.fit(jax.random.key(2), shifted, x, prior=gaussian_simulator.prior, progress=False)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert compiled == []


def test_loss_curve_marks_the_learning_rate_reductions():
    history = sk.History(
        train_loss=(3.0, 2.0, 1.5, 1.4, 1.45),
        validation_loss=(3.1, 2.2, 1.8, 1.9, 1.95),
        best_epoch=2,
        learning_rate_reductions=(3,),
    )
    fig = sk.plotting.loss_curve(history)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["training", "validation", "kept", "learning rate reduced"]
    lines = {line.get_label(): line.get_xdata() for line in ax.get_lines()}
    assert list(lines["learning rate reduced"]) == [4, 4]  # epoch index 3, drawn 1-based
    plt.close(fig)


@pytest.mark.filterwarnings("ignore:.*column 0 of `x` is constant:UserWarning")
def test_a_second_fit_whose_data_has_a_constant_column_gets_its_own_program():
    """NLE leaves the constant components of x out of its flow, so the network's structure
    depends on the data. A second fit of the same method whose x has a constant column (as sir's
    first count had in some rounds of one SNLE benchmark run) must not run the program compiled
    for the first fit's structure; it used to fail with a pytree structure error."""
    prior = dist.Normal(jnp.zeros(2), 1.0).to_event(1)
    theta = prior.sample(jax.random.key(0), (200,))
    x = theta + 0.3 * jax.random.normal(jax.random.key(1), (200, 2))
    method = sk.NLE(
        flow=sk.estimators.MAF(layers=1, width=8, depth=1), training=sk.Training(max_epochs=2)
    )
    first = method.fit(jax.random.key(2), theta, x, prior=prior, progress=False)
    assert first.x_constant == ()
    second = method.fit(jax.random.key(3), theta, x.at[:, 0].set(0.0), prior=prior, progress=False)
    assert second.x_constant == (0,) and np.isfinite(second.history.validation_loss).all()
