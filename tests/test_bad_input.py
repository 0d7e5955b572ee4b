"""The public API driven with a table of bad inputs.

Every row says what must happen: a ``Raises(type, fragment)`` (the message names the argument,
or the setting, that was wrong) or a ``Gives(check, what)``, a documented result (a legacy key
gives the same numbers as a new-style one, a non-finite θ gives a NaN log-density, ...).
No row asserts only that something raised.

Methods: each entry of ``METHODS`` runs every method row (fit, the method's settings, sample,
log_prob); adding a method (NLE, NRE, NPSE, FMPE, PFN) is one more line there. The method rows
train one tiny posterior per method (a session fixture); every fit row fails, or warns, before
training starts (warnings are errors in this test suite), so only that one fit trains.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import sbi_kit as sk

_TINY = sk.Training(max_epochs=2, batch_size=64)
_TINY_MCMC = sk.mcmc.MCMCConfig(num_chains=2, num_warmup=5)
METHODS = [
    sk.NPE(flow=sk.estimators.MAF(layers=1, width=8, depth=1), training=_TINY),
    sk.NLE(flow=sk.estimators.MAF(layers=1, width=8, depth=1), training=_TINY, mcmc=_TINY_MCMC),
    sk.NRE(width=8, depth=1, training=_TINY, mcmc=_TINY_MCMC),
    sk.NPSE(
        network=sk.estimators.ResidualVectorField(width=8, blocks=1),
        training=_TINY,
        sampler=sk.inference.DPMSolver(num_steps=5),
    ),
    sk.FMPE(network=sk.estimators.ResidualVectorField(width=8, blocks=1), training=_TINY),
]
"""One configured, tiny instance per inference method."""
DENSITY_METHODS = [
    m for m in METHODS if not isinstance(m, sk.inference.AbstractPotentialMethod | sk.NPSE)
]
"""Density posteriors that condition on ONE observation (NPSE also composes stacks: own rows)."""
NPSE_METHOD = next(m for m in METHODS if isinstance(m, sk.NPSE))
POTENTIAL_METHODS = [m for m in METHODS if isinstance(m, sk.inference.AbstractPotentialMethod)]

PRIOR = dist.Uniform(-jnp.ones(2), jnp.ones(2)).to_event(1)
NUM = 200  # simulations of the shared problem


def _simulate(key, theta):
    return theta + 0.1 * jax.random.normal(key, (2,))


SIM = sk.Simulator(PRIOR, _simulate)


# --- what a row expects ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Raises:
    """The call raises ``exc`` with ``fragment`` (literal text) in its message."""

    exc: type[BaseException]
    fragment: str

    def __str__(self):
        return f"{self.exc.__name__}"


@dataclasses.dataclass(frozen=True)
class Warns:
    """The call warns (``category``, ``fragment``) before any training: raised as an error here."""

    category: type[Warning]
    fragment: str

    def __str__(self):
        return f"{self.category.__name__}"


@dataclasses.dataclass(frozen=True)
class Gives:
    """A documented result: ``check(result, ctx)`` holds."""

    check: Callable[[Any, Any], None]
    what: str

    def __str__(self):
        return "result"


def _run(call: Callable[[], Any], expect, ctx=None) -> None:
    if isinstance(expect, Raises):
        with pytest.raises(expect.exc, match=re.escape(expect.fragment)):
            call()
    elif isinstance(expect, Warns):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(expect.category, match=re.escape(expect.fragment)):
                call()
    else:
        expect.check(call(), ctx)


def _table(rows):
    """``(name, call or changes, expectation[, marks])`` rows as pytest parameters."""
    return [pytest.param(call, expect, id=name, marks=marks) for name, call, expect, *marks in rows]


# --- shared data and one trained posterior per method ------------------------------------------


@dataclasses.dataclass(frozen=True)
class Problem:
    theta: np.ndarray
    x: np.ndarray


@pytest.fixture(scope="session")
def problem() -> Problem:
    theta, x = sk.simulate(jax.random.key(0), SIM, NUM)
    return Problem(np.asarray(theta), np.asarray(x))


def _method_id(method) -> str:
    return type(method).__name__


@pytest.fixture(scope="session", params=METHODS, ids=_method_id)
def method(request):
    return request.param


_TRAINED: dict = {}


def _trained(method, problem):
    """One tiny posterior per method for the whole session."""
    if method not in _TRAINED:
        _TRAINED[method] = method.fit(
            jax.random.key(1), problem.theta, problem.x, prior=PRIOR, progress=False
        )
    return _TRAINED[method]


@pytest.fixture(scope="session")
def posterior(method, problem):
    """Every method's posterior (for log_prob rows)."""
    return _trained(method, problem)


@pytest.fixture(scope="session", params=DENSITY_METHODS, ids=_method_id)
def density_posterior(request, problem):
    """Posteriors with a density: sample draws directly (jittable)."""
    return _trained(request.param, problem)


@pytest.fixture(scope="session", params=POTENTIAL_METHODS, ids=_method_id)
def potential_posterior(request, problem):
    """Posteriors sampled by MCMC: x_o may be an i.i.d. stack."""
    return _trained(request.param, problem)


# --- fit: keys, shapes, sizes, dtypes, non-finite values, priors, unscalable columns ------------


def _with(a, index, value):
    a = np.array(a, dtype=np.float32)
    a[index] = value
    return a


def _constant_column(x):
    return _with(x, (slice(None), 1), 3.0)


FIT_ROWS = [
    # (name, kwargs changes from the good call, expectation)
    (
        "key-int",
        dict(key=0),
        Raises(TypeError, "`key` must be one JAX PRNG key such as jax.random.key(0), got int 0"),
    ),
    ("key-None", dict(key=None), Raises(TypeError, "`key` must be one JAX PRNG key")),
    (
        "key-numpy",
        dict(key=np.zeros(2, np.uint32)),
        Raises(TypeError, "`key` must be one JAX PRNG key"),
    ),
    (
        "key-batch",
        dict(key=jax.random.split(jax.random.key(0), 2)),
        Raises(
            TypeError,
            "`key` must be one JAX PRNG key such as jax.random.key(0), got an array of shape (2,)",
        ),
    ),
    (
        "theta-1d",
        dict(theta=lambda p: p.theta[:, 0]),
        Raises(ValueError, "`theta` must have shape (num_simulations, dim_theta)"),
    ),
    (
        "theta-3d",
        dict(theta=lambda p: p.theta[:, :, None]),
        Raises(ValueError, "`theta` must have shape (num_simulations, dim_theta)"),
    ),
    (
        "x-1d",
        dict(x=lambda p: p.x[:, 0]),
        Raises(ValueError, "`x` must have shape (num_simulations, dim_x)"),
    ),
    (
        "x-fewer-rows",
        dict(x=lambda p: p.x[:-1]),
        Raises(ValueError, "`theta` and `x` must have the same number of rows"),
    ),
    (
        "empty",
        dict(theta=lambda p: p.theta[:0], x=lambda p: p.x[:0]),
        Raises(ValueError, "`theta` and `x` hold 0 simulations; at least 3"),
    ),
    (
        "one-row",
        dict(theta=lambda p: p.theta[:1], x=lambda p: p.x[:1]),
        Raises(ValueError, "`theta` and `x` hold 1 simulations"),
    ),
    (
        "two-rows",
        dict(theta=lambda p: p.theta[:2], x=lambda p: p.x[:2]),
        Raises(ValueError, "`theta` and `x` hold 2 simulations; at least 3"),
    ),
    (
        "x-no-columns",
        dict(x=lambda p: p.x[:, :0]),
        Raises(ValueError, "must have at least one column"),
    ),
    (
        "theta-strings",
        dict(theta=lambda p: p.theta.astype(str)),
        Raises(TypeError, "`theta` must be a numeric array"),
    ),
    (
        "x-complex",
        dict(x=lambda p: p.x.astype(np.complex64)),
        Raises(TypeError, "`x` must hold real numbers, got dtype complex64"),
    ),
    (
        "x-object",
        dict(x=lambda p: np.array([object()] * NUM)),
        Raises(TypeError, "`x` must be a numeric array"),
    ),
    (
        "theta-nan",
        dict(theta=lambda p: _with(p.theta, (5, 0), np.nan)),
        Raises(ValueError, "`theta` holds 1 rows with NaN or inf"),
    ),
    (
        "theta-inf",
        dict(theta=lambda p: _with(p.theta, (5, 1), np.inf)),
        Raises(ValueError, "`theta` holds 1 rows with NaN or inf"),
    ),
    (
        "x-nan",
        dict(x=lambda p: _with(p.x, (7, 1), np.nan)),
        Raises(ValueError, "`x` holds 1 rows with NaN or inf"),
    ),
    (
        "x-neg-inf",
        dict(x=lambda p: _with(_with(p.x, (7, 1), -np.inf), (9, 0), np.inf)),
        Raises(ValueError, "`x` holds 2 rows with NaN or inf"),
    ),
    (
        "prior-string",
        dict(prior="uniform"),
        Raises(TypeError, "`prior` must be a numpyro Distribution"),
    ),
    ("prior-None", dict(prior=None), Raises(TypeError, "`prior` must be a numpyro Distribution")),
    (
        "prior-event-shape",
        dict(prior=dist.Uniform(-jnp.ones(3), 1.0).to_event(1)),
        Raises(ValueError, "the prior's event shape must be (2,)"),
    ),
    (
        "prior-batch-shape",
        dict(prior=dist.Uniform(-jnp.ones(2), 1.0)),
        Raises(
            ValueError,
            "got event shape () and batch shape (2,)",
        ),
    ),
    (
        "theta-outside-support",
        dict(theta=lambda p: _with(p.theta, (0, 0), 1.5)),
        Raises(ValueError, "1 rows of `theta` lie outside the prior's support"),
    ),
    (
        "x-constant-column",
        dict(x=lambda p: _constant_column(p.x)),
        Warns(UserWarning, "column 1 of `x` is constant across all 200 simulations"),
    ),
    (
        "x-outlier-1e30",
        dict(x=lambda p: _with(p.x, (3, 1), 1e30)),
        Warns(UserWarning, "column 1 of `x` is dominated by a few extreme values"),
    ),
    (
        "x-nearly-constant-column",  # sir's first count: one value but in a row or two
        dict(x=lambda p: _with(_constant_column(p.x), (7, 1), 1.0)),
        Warns(UserWarning, "column 1 of `x` is nearly constant: it takes the value"),
    ),
    (
        "x-unscalable",
        dict(x=lambda p: _with(_with(p.x, (slice(None), 0), -3.4e38), (0, 0), 3.4e38)),
        Raises(ValueError, "column 0 of `x` cannot be z-scored in float32"),
    ),
    (
        "theta-constant-column",
        dict(theta=lambda p: _with(p.theta, (slice(None), 0), 0.25)),
        Warns(UserWarning, "column 0 of `theta` is constant"),
    ),
    (
        "init-string",
        dict(init="posterior"),
        Raises(TypeError, "`init` must be a posterior of this method"),
    ),
]


@pytest.mark.parametrize("changes, expect", _table(FIT_ROWS))
def test_fit_refuses_bad_input(method, problem, changes, expect):
    args = dict(key=jax.random.key(0), theta=problem.theta, x=problem.x, prior=PRIOR)
    for name, value in changes.items():
        args[name] = value(problem) if callable(value) and name in ("theta", "x") else value
    _run(lambda: method.fit(progress=False, **args), expect)


def test_fit_refuses_an_init_of_other_dimensions_or_another_method(method, problem):
    prior3 = dist.Uniform(-jnp.ones(3), jnp.ones(3)).to_event(1)
    args = dict(theta=problem.theta, x=problem.x, prior=PRIOR, progress=False)
    three = method.init(jax.random.key(0), 3, (2,), prior3)
    with pytest.raises(ValueError, match=re.escape("`init` was trained for 3 parameters")):
        method.fit(jax.random.key(0), init=three, **args)
    other = next(m for m in METHODS if type(m) is not type(method))
    with pytest.raises(TypeError, match="`init` must be a posterior of this method.*got"):
        method.fit(jax.random.key(0), init=other.init(jax.random.key(0), 2, (2,), PRIOR), **args)


# --- the method's own settings -----------------------------------------------------------------


SETTING_ROWS = [
    (
        "training-not-Training",
        dict(training="fast"),
        Raises(TypeError, "`training` must be sk.Training(...)"),
    ),
    (
        "ensemble-zero",
        dict(ensemble_size=0),
        Raises(ValueError, "ensemble_size must be a positive integer, got 0"),
    ),
    (
        "ensemble-bool",
        dict(ensemble_size=True),
        Raises(ValueError, "ensemble_size must be a positive integer, got True"),
    ),
    (
        "support-string",
        dict(support="reject"),
        Raises(TypeError, "`support` must be sk.inference.Bijection()"),
    ),
]


@pytest.mark.parametrize("changes, expect", _table(SETTING_ROWS))
def test_method_settings_are_checked(method, changes, expect):
    _run(lambda: dataclasses.replace(method, **changes), expect)


TRAINING_ROWS = [
    (
        "clip_norm-zero",
        dict(clip_norm=0.0),
        Raises(ValueError, "Training: clip_norm must be > 0 (or None"),
    ),
    (
        "clip_norm-negative",
        dict(clip_norm=-1.0),
        Raises(ValueError, "Training: clip_norm must be > 0"),
    ),
    (
        "clip_norm-nan",
        dict(clip_norm=float("nan")),
        Raises(ValueError, "Training: clip_norm must be finite"),
    ),
    (
        "learning_rate-zero",
        dict(learning_rate=0.0),
        Raises(ValueError, "Training: learning_rate must be > 0"),
    ),
    (
        "learning_rate-inf",
        dict(learning_rate=float("inf")),
        Raises(ValueError, "Training: learning_rate must be finite"),
    ),
    (
        "learning_rate-string",
        dict(learning_rate="1e-3"),
        Raises(TypeError, "Training: learning_rate must be a number"),
    ),
    (
        "batch_size-bool",
        dict(batch_size=True),
        Raises(ValueError, "Training: batch_size must be a positive integer"),
    ),
    (
        "batch_size-float",
        dict(batch_size=64.0),
        Raises(ValueError, "Training: batch_size must be a positive integer"),
    ),
    (
        "max_epochs-zero",
        dict(max_epochs=0),
        Raises(ValueError, "Training: max_epochs must be a positive integer"),
    ),
    (
        "patience-negative",
        dict(patience=-1),
        Raises(ValueError, "Training: patience must be a positive integer"),
    ),
    (
        "validation_repeats-zero",
        dict(validation_repeats=0),
        Raises(ValueError, "Training: validation_repeats must be a positive integer"),
    ),
    (
        "ema_decay-one",
        dict(ema_decay=1.0),
        Raises(ValueError, "Training: ema_decay must lie in (0, 1)"),
    ),
    (
        "weight_decay-negative",
        dict(weight_decay=-0.1),
        Raises(ValueError, "Training: weight_decay must be >= 0"),
    ),
    (
        "weight_decay-string",
        dict(weight_decay="1"),
        Raises(TypeError, "Training: weight_decay must be a number"),
    ),
    (
        "lr_plateau_steps-zero",
        dict(lr_plateau_steps=0),
        Raises(ValueError, "Training: lr_plateau_steps must be a positive integer"),
    ),
    (
        "lr_factor-one",
        dict(lr_factor=1.0),
        Raises(ValueError, "Training: lr_factor must lie in (0, 1)"),
    ),
    (
        "lr_factor-string",
        dict(lr_factor="0.5"),
        Raises(TypeError, "Training: lr_factor must be a number"),
    ),
    (
        "lr_reductions-negative",
        dict(lr_reductions=-1),
        Raises(ValueError, "Training: lr_reductions must be a non-negative integer"),
    ),
    (
        "lr_stop_without_gain-int",
        dict(lr_stop_without_gain=1),
        Raises(TypeError, "Training: lr_stop_without_gain must be True or False, got 1"),
    ),
    (
        "lr_plateau_steps-None",
        dict(lr_plateau_steps=None),
        Gives(lambda t, _: _check(t.lr_plateau_steps is None), "None: no schedule"),
    ),
    (
        "validation_fraction-one",
        dict(validation_fraction=1.0),
        Raises(ValueError, "Training: validation_fraction must lie in (0, 1)"),
    ),
    (
        "clip_norm-None",
        dict(clip_norm=None),
        Gives(lambda t, _: _check(t.clip_norm is None), "None switches clipping off"),
    ),
]


@pytest.mark.parametrize("changes, expect", _table(TRAINING_ROWS))
def test_training_settings_are_checked(changes, expect):
    _run(lambda: sk.Training(**changes), expect)


def _check(ok: bool, what: str = "") -> None:
    assert ok, what


# --- sample and log_prob of a trained posterior ------------------------------------------------

X_O = np.array([0.3, -0.2], np.float32)


def _same_as_new_style_key(samples, ctx):
    np.testing.assert_array_equal(samples, ctx.sample(jax.random.key(2), X_O, 5))


SAMPLE_ROWS = [
    (
        "key-int",
        dict(key=2),
        Raises(
            TypeError, "sample: `key` must be one JAX PRNG key such as jax.random.key(0), got int 2"
        ),
    ),
    ("key-None", dict(key=None), Raises(TypeError, "`key` must be one JAX PRNG key")),
    (
        "key-batch",
        dict(key=jax.random.split(jax.random.key(2), 3)),
        Raises(TypeError, "`key` must be one JAX PRNG key"),
    ),
    (
        "key-legacy",
        dict(key=jax.random.PRNGKey(2)),
        Gives(_same_as_new_style_key, "the same draws as jax.random.key(2)"),
    ),
    (
        "num_samples-zero",
        dict(num_samples=0),
        Raises(ValueError, "`num_samples` must be a positive integer, got 0"),
    ),
    (
        "num_samples-negative",
        dict(num_samples=-3),
        Raises(ValueError, "`num_samples` must be a positive integer, got -3"),
    ),
    (
        "num_samples-bool",
        dict(num_samples=True),
        Raises(ValueError, "`num_samples` must be a positive integer, got True"),
    ),
    (
        "num_samples-float",
        dict(num_samples=5.0),
        Raises(ValueError, "`num_samples` must be a positive integer, got 5.0"),
    ),
    (
        "num_samples-numpy-int",
        dict(num_samples=np.int64(5)),
        Gives(lambda s, _: _check(s.shape == (5, 2)), "NumPy integers are integers"),
    ),
    (
        "x_o-wrong-shape",
        dict(x_o=np.zeros(3)),
        Raises(ValueError, "`x_o` must have shape (2,), got shape (3,)"),
    ),
    ("x_o-scalar", dict(x_o=0.5), Raises(ValueError, "`x_o` must have shape (2,), got shape ()")),
    (
        "x_o-empty",
        dict(x_o=np.zeros(0)),
        Raises(ValueError, "`x_o` must have shape (2,), got shape (0,)"),
    ),
    (
        "x_o-batch",
        dict(x_o=np.zeros((4, 2))),
        Raises(ValueError, "This posterior conditions on one observation at a time"),
    ),
    (
        "x_o-nan",
        dict(x_o=_with(X_O, 0, np.nan)),
        Raises(ValueError, "`x_o` contains 1 NaN or inf value(s)"),
    ),
    (
        "x_o-inf",
        dict(x_o=_with(X_O, 1, -np.inf)),
        Raises(ValueError, "`x_o` contains 1 NaN or inf value(s)"),
    ),
]


NPSE_SAMPLE_ROWS = [row for row in SAMPLE_ROWS if not row[0].startswith("x_o-")] + [
    (
        "x_o-wrong-shape",
        dict(x_o=np.zeros(3)),
        Raises(ValueError, "`x_o` must have shape (2,) or (n_obs, 2), got shape (3,)"),
    ),
    (
        "x_o-empty-stack",
        dict(x_o=np.zeros((0, 2))),
        Raises(ValueError, "`x_o` is an empty stack"),
    ),
    (
        "x_o-stack-without-diffused-prior-score",
        dict(x_o=np.zeros((4, 2))),
        Raises(ValueError, "GAUSS needs the diffused prior's score"),
    ),
    (
        "x_o-nan",
        dict(x_o=_with(X_O, 0, np.nan)),
        Raises(ValueError, "`x_o` contains 1 NaN or inf value(s)"),
    ),
]
"""NPSE's sample: as the others', but a stack of i.i.d. observations is composed."""


@pytest.mark.parametrize("changes, expect", _table(NPSE_SAMPLE_ROWS))
def test_npse_sample_refuses_bad_input(problem, changes, expect):
    posterior = _trained(NPSE_METHOD, problem)
    args = {"key": jax.random.key(0), "x_o": X_O, "num_samples": 5} | changes
    _run(lambda: posterior.sample(**args), expect, posterior)


COMPOSITION_ROWS = [
    (
        "smc-num_steps-zero",
        lambda: sk.inference.SMC(num_steps=0),
        Raises(ValueError, "SMC: num_steps must be a positive integer, got 0"),
    ),
    (
        "smc-ess_threshold-one",
        lambda: sk.inference.SMC(ess_threshold=1.0),
        Raises(ValueError, "SMC: ess_threshold must be a number in (0, 1), got 1.0"),
    ),
    (
        "smc-langevin_steps-negative",
        lambda: sk.inference.SMC(langevin_steps=-1),
        Raises(ValueError, "SMC: langevin_steps must be a non-negative integer, got -1"),
    ),
    (
        "smc-langevin_steps-bool",
        lambda: sk.inference.SMC(langevin_steps=True),
        Raises(ValueError, "SMC: langevin_steps must be a non-negative integer, got True"),
    ),
    (
        "smc-step_size-nan",
        lambda: sk.inference.SMC(step_size=float("nan")),
        Raises(ValueError, "SMC: step_size must be a number in (0, 1), got nan"),
    ),
    (
        "smc-prior-without-diffused-score",
        lambda: sk.inference.SMC().sample(
            jax.random.key(0),
            lambda y, t, c: -y,
            jnp.zeros((3, 2)),
            sk.inference.DensityPrior(lambda y: -jnp.sum(jnp.abs(y)), 2, "Laplace"),
            sk.inference.VPSDE(),
            10,
        ),
        Raises(ValueError, "SMC needs the diffused prior's score"),
    ),
    (
        "npse-unconditional_fraction-one",
        lambda: sk.NPSE(unconditional_fraction=1.0),
        Raises(ValueError, "NPSE: unconditional_fraction must be a number in [0, 1), got 1.0"),
    ),
    (
        "probability-flow-ode-divergence-string",
        lambda: sk.inference.ProbabilityFlowODE(divergence="hutchinson"),
        Raises(TypeError, "ProbabilityFlowODE: `divergence` must be sk.inference.ExactDivergence"),
    ),
    (
        "hutchinson-seed-float",
        lambda: sk.inference.HutchinsonDivergence(seed=1.5),
        Raises(ValueError, "HutchinsonDivergence: seed must be a non-negative integer, got 1.5"),
    ),
    (
        "hutchinson-probes-bool",
        lambda: sk.inference.HutchinsonDivergence(num_probes=True),
        Raises(ValueError, "HutchinsonDivergence: num_probes must be a positive integer, got True"),
    ),
    (
        "null-context-of-a-network-without-one",
        lambda: NPSE_METHOD.init(jax.random.key(0), 2, (2,), PRIOR).net.null_context(),
        Raises(ValueError, "FieldNet.null_context: this network was trained on observations"),
    ),
]
"""The composition strategies' own settings (those of GAUSS, JAC and FNPSE are in
tests/inference/test_composition.py)."""


FLOW_CHOICE_ROWS = [
    (
        "best-of-one-candidate",
        lambda: sk.estimators.BestOf((sk.estimators.NSF(),)),
        Raises(ValueError, "BestOf: `candidates` must hold at least two flow specs, got 1"),
    ),
    (
        "best-of-not-a-tuple",
        lambda: sk.estimators.BestOf(sk.estimators.NSF()),
        Raises(TypeError, "BestOf: `candidates` must be a tuple or list of flow specs, got NSF("),
    ),
    (
        "best-of-a-string",
        lambda: sk.estimators.BestOf((sk.estimators.NSF(), "maf")),
        Raises(TypeError, "BestOf: candidate 1 must be a flow spec such as sk.estimators.NSF()"),
    ),
    (
        "best-of-the-same-twice",
        lambda: sk.estimators.BestOf((sk.estimators.MAF(), sk.estimators.MAF())),
        Raises(ValueError, "BestOf: candidate 1, MAF("),
    ),
    (
        "nle-flow-string",
        lambda: sk.NLE(flow="best"),
        Raises(TypeError, "NLE: `flow` must be a flow spec such as sk.estimators.NSF() or a"),
    ),
    (
        "npe-embedding-string",
        lambda: sk.NPE(embedding="mlp"),
        Raises(TypeError, "NPE: `embedding` must be None or an embedding spec such as"),
    ),
    (
        "init-of-a-choice",
        lambda: sk.NLE().init(jax.random.key(0), 2, (2,), PRIOR),
        Raises(ValueError, "NLE.init: this method chooses between several networks"),
    ),
]
"""sk.estimators.BestOf and the methods that take it (fitting with it: tests/inference/
test_best_of.py)."""


@pytest.mark.parametrize("call, expect", _table(FLOW_CHOICE_ROWS))
def test_flow_choice_settings_are_checked(call, expect):
    _run(call, expect)


@pytest.mark.parametrize("call, expect", _table(COMPOSITION_ROWS))
def test_composition_settings_are_checked(call, expect):
    _run(call, expect)


@pytest.mark.parametrize("changes, expect", _table(SAMPLE_ROWS))
def test_sample_refuses_bad_input(density_posterior, changes, expect):
    args = dict(key=jax.random.key(2), x_o=X_O, num_samples=5) | changes
    _run(lambda: density_posterior.sample(**args), expect, density_posterior)


X_OS = np.stack([X_O, -X_O, 0.5 * X_O]).astype(np.float32)

SAMPLE_BATCHED_ROWS = [
    ("key-int", dict(key=2), Raises(TypeError, "sample_batched: `key` must be one JAX PRNG key")),
    (
        "num_samples-zero",
        dict(num_samples=0),
        Raises(ValueError, "`num_samples` must be a positive integer, got 0"),
    ),
    (
        "x_os-one-observation",
        dict(x_os=X_O),
        Raises(ValueError, "`x_os` must have shape (num_observations, 2), one observation per row"),
    ),
    (
        "x_os-wrong-width",
        dict(x_os=np.zeros((3, 3), np.float32)),
        Raises(ValueError, "`x_os` must have shape (num_observations, 2), one observation per row"),
    ),
    (
        "x_os-empty",
        dict(x_os=np.zeros((0, 2), np.float32)),
        Raises(ValueError, "`x_os` holds no observations (shape (0, 2))"),
    ),
    (
        "x_os-nan",
        dict(x_os=_with(X_OS, (1, 0), np.nan)),
        Raises(ValueError, "`x_os` contains 1 NaN or inf value(s)"),
    ),
    (
        "batch_size-zero",
        dict(batch_size=0),
        Raises(ValueError, "`batch_size` must be a positive integer, got 0"),
    ),
    (
        "batch_size-float",
        dict(batch_size=2.0),
        Raises(ValueError, "`batch_size` must be a positive integer, got 2.0"),
    ),
    (
        "batch_size-larger-than-the-batch",
        dict(batch_size=100),
        Gives(lambda s, _: _check(s.shape == (3, 5, 2)), "one chunk of all observations"),
    ),
]
"""``sample_batched`` (one implementation for every posterior, checked on the density ones)."""


@pytest.mark.parametrize("changes, expect", _table(SAMPLE_BATCHED_ROWS))
def test_sample_batched_refuses_bad_input(density_posterior, changes, expect):
    args = dict(key=jax.random.key(2), x_os=X_OS, num_samples=5) | changes
    _run(lambda: density_posterior.sample_batched(**args), expect, density_posterior)


POTENTIAL_SAMPLE_ROWS = [
    # MCMC posteriors: every row fails before the chains run
    ("key-int", dict(key=0), Raises(TypeError, "`key` must be one JAX PRNG key")),
    ("num_samples-zero", dict(num_samples=0), Raises(ValueError, "`num_samples` must be a")),
    (
        "x_o-nan",
        dict(x_o=_with(X_O, 0, np.nan)),
        Raises(ValueError, "`x_o` contains 1 NaN or inf value(s)"),
    ),
    (
        "x_o-stack-wrong-width",
        dict(x_o=np.zeros((4, 3), np.float32)),
        Raises(ValueError, "`x_o` must have shape (2,) or (n_obs, 2), got shape (4, 3)"),
    ),
    (
        "x_o-3d",
        dict(x_o=np.zeros((4, 2, 1), np.float32)),
        Raises(ValueError, "`x_o` must have shape (2,) or (n_obs, 2)"),
    ),
]


@pytest.mark.parametrize("changes, expect", _table(POTENTIAL_SAMPLE_ROWS))
def test_mcmc_sample_refuses_bad_input(potential_posterior, changes, expect):
    args = dict(key=jax.random.key(2), x_o=X_O, num_samples=5) | changes
    _run(lambda: potential_posterior.sample(**args), expect, potential_posterior)


def test_iid_stack_is_a_documented_input_of_mcmc_posteriors(potential_posterior):
    """A stack of i.i.d. observations sums their potentials, the prior counted once."""
    theta = np.zeros((3, 2), np.float32)
    stack = np.stack([X_O, 0.5 * X_O]).astype(np.float32)
    both = potential_posterior.log_prob(theta, stack)
    one, other = (
        potential_posterior.log_prob(theta, X_O),
        potential_posterior.log_prob(theta, stack[1]),
    )
    prior = PRIOR.log_prob(jnp.asarray(theta))
    np.testing.assert_allclose(both, one + other - prior, rtol=1e-5, atol=1e-4)


# --- NLE: a component of x that was constant in every training simulation ---------------------

NLE_METHOD = next(m for m in METHODS if isinstance(m, sk.NLE))
X_O3 = np.append(X_O, np.float32(3.0))


def _with_constant(x):
    return np.concatenate([x, np.full((x.shape[0], 1), 3.0, np.float32)], axis=1)


@pytest.fixture(scope="module")
def nle_with_constant(problem):
    """A tiny NLE trained on x with a third component that is 3 in every simulation."""
    with pytest.warns(UserWarning, match="column 2 of `x` is constant"):
        return NLE_METHOD.fit(
            jax.random.key(1), problem.theta, _with_constant(problem.x), prior=PRIOR, progress=False
        )


def _is_minus_inf(lp, _):
    _check(bool(np.isneginf(lp)), "a log-likelihood of -inf")


NLE_CONSTANT_ROWS = [
    (
        "sample-x_o-off-the-constant",
        lambda p, _: p.sample(jax.random.key(2), _with(X_O3, 2, 2.5), 5),
        Raises(
            ValueError, "component 2 of `x_o` is 2.5, but it was 3 in every training simulation"
        ),
    ),
    (
        "log_prob-stack-row-off-the-constant",
        lambda p, _: p.log_prob(np.zeros(2, np.float32), np.stack([X_O3, _with(X_O3, 2, 2.5)])),
        Raises(ValueError, "component 2 of observation 1 of `x_o` is 2.5"),
    ),
    (
        "likelihood-off-the-constant",
        lambda p, _: p.likelihood(np.zeros(2, np.float32)).log_prob(_with(X_O3, 2, 2.5)),
        Gives(_is_minus_inf, "the learned likelihood puts all its mass on the value 3"),
    ),
    (
        "refit-from-init-with-other-values",
        lambda p, problem: NLE_METHOD.fit(
            jax.random.key(1),
            problem.theta,
            _with(_with_constant(problem.x), (slice(0, 4), 2), 1.0),
            prior=PRIOR,
            progress=False,
            init=p,
        ),
        Warns(UserWarning, "4 of the 200 simulations take another value in component(s) [2]"),
    ),
]


@pytest.mark.parametrize("call, expect", _table(NLE_CONSTANT_ROWS))
def test_nle_refuses_x_o_off_a_constant_component(nle_with_constant, problem, call, expect):
    _run(lambda: call(nle_with_constant, problem), expect)


def test_sample_under_jit_refuses_non_finite_x_o(density_posterior):
    """Inside ``filter_jit`` the values are unknown at trace time: an ``eqx.error_if`` raises."""
    posterior = density_posterior
    sample = eqx.filter_jit(lambda x_o: posterior.sample(jax.random.key(2), x_o, 5))
    assert sample(jnp.asarray(X_O)).shape == (5, 2)
    with pytest.raises(eqx.EquinoxRuntimeError, match=re.escape("`x_o` contains NaN or inf")):
        sample(jnp.asarray(_with(X_O, 0, np.nan))).block_until_ready()


def _nan_only_in_row(lp, _):
    lp = np.asarray(lp)
    assert lp.shape == (3,) and np.isnan(lp[1]) and np.isfinite(lp[[0, 2]]).all(), lp


LOG_PROB_ROWS = [
    (
        "theta-nan-row",
        dict(theta=np.array([[0.1, 0.2], [np.nan, 0.0], [-0.3, 0.4]])),
        Gives(_nan_only_in_row, "NaN for that row only"),
    ),
    (
        "theta-inf-row",
        dict(theta=np.array([[0.1, 0.2], [0.0, np.inf], [-0.3, 0.4]])),
        Gives(_nan_only_in_row, "NaN for that row only"),
    ),
    (
        "theta-outside-support",
        dict(theta=np.array([1.5, 0.0])),
        Gives(lambda lp, _: _check(float(lp) == -np.inf), "-inf outside the prior's support"),
    ),
    (
        "theta-wrong-width",
        dict(theta=np.zeros((4, 3))),
        Raises(ValueError, "`theta` must have shape (2,) or (n, 2), got shape (4, 3)"),
    ),
    (
        "theta-3d",
        dict(theta=np.zeros((4, 2, 1))),
        Raises(ValueError, "`theta` must have shape (2,) or (n, 2)"),
    ),
    (
        "x_o-nan",  # checked on the values before the jitted computation
        dict(x_o=_with(X_O, 0, np.nan)),
        Raises(ValueError, "log_prob: `x_o` contains 1 NaN or inf value(s)"),
    ),
    ("x_o-wrong-shape", dict(x_o=np.zeros(5)), Raises(ValueError, "`x_o` must have shape (2,)")),
]


@pytest.mark.parametrize("changes, expect", _table(LOG_PROB_ROWS))
def test_log_prob_refuses_bad_input(posterior, changes, expect):
    args = dict(theta=np.zeros((3, 2), np.float32), x_o=X_O) | changes
    _run(lambda: np.asarray(posterior.log_prob(**args)), expect, posterior)


HELD_OUT_ROWS = [
    (
        "posterior-method",
        dict(posterior=lambda p: p.method),
        Raises(TypeError, "`posterior` must be a trained posterior (a method's fit result), got"),
    ),
    ("key-int", dict(key=3), Raises(TypeError, "`key` must be one JAX PRNG key")),
    (
        "theta-wrong-width",
        dict(theta=np.zeros((4, 3), np.float32)),
        Raises(ValueError, "trained for 2 parameters and observations of shape (2,); got `theta`"),
    ),
    ("x-1d", dict(x=np.zeros(4, np.float32)), Raises(ValueError, "`x` must have 2 dimensions")),
    (
        "x-fewer-rows",
        dict(x=np.zeros((3, 2), np.float32)),
        Raises(ValueError, "must hold the same number (≥ 1) of simulations; got 4 and 3"),
    ),
    (
        "empty",
        dict(theta=np.zeros((0, 2), np.float32), x=np.zeros((0, 2), np.float32)),
        Raises(ValueError, "must hold the same number (≥ 1) of simulations; got 0 and 0"),
    ),
    (
        "x-nan",
        dict(x=_with(np.zeros((4, 2)), (1, 0), np.nan)),
        Raises(ValueError, "`x` holds 1 rows with NaN or inf"),
    ),
    (
        "theta-outside-support",
        dict(theta=_with(np.zeros((4, 2)), (2, 1), 1.5)),
        Raises(ValueError, "1 rows of `theta` lie outside the prior's support"),
    ),
]


@pytest.mark.parametrize("changes, expect", _table(HELD_OUT_ROWS))
def test_held_out_loss_refuses_bad_input(posterior, changes, expect):
    args = dict(
        posterior=posterior,
        key=jax.random.key(0),
        theta=np.zeros((4, 2), np.float32),
        x=np.zeros((4, 2), np.float32),
    )
    args |= {k: v(posterior) if callable(v) else v for k, v in changes.items()}
    _run(lambda: sk.inference.held_out_loss(**args), expect, posterior)


def _is_nan(result, _):
    assert np.isnan(result), result


EXTREMITY_ROWS = [
    (
        "x-1d",
        dict(x=np.zeros(4)),
        Raises(ValueError, "`x` must have shape (num_simulations, *x_shape), got shape (4,)"),
    ),
    ("x-string", dict(x="sims"), Raises(TypeError, "`x` must be an array, got str")),
    (
        "x-nan",
        dict(x=_with(np.zeros((4, 2)), (1, 0), np.nan)),
        Raises(ValueError, "`x` contains 1 NaN or inf value(s)"),
    ),
    (
        "x_o-wrong-shape",
        dict(x_o=np.zeros(3)),
        Raises(
            ValueError,
            "`x_o` must have shape (2,) (one observation) or (n_obs, 2) like the simulations in "
            "`x`, got (3,)",
        ),
    ),
    (
        "x_o-empty-stack",
        dict(x_o=np.zeros((0, 2))),
        Raises(ValueError, "`x_o` holds no observation (shape (0, 2))"),
    ),
    (
        "x_o-inf",
        dict(x_o=np.array([0.0, np.inf])),
        Raises(ValueError, "`x_o` contains 1 NaN or inf value(s)"),
    ),
    (
        "one-simulation",
        dict(x=np.zeros((1, 2))),
        Gives(_is_nan, "NaN: nothing to compare x_o with"),
    ),
]


@pytest.mark.parametrize("changes, expect", _table(EXTREMITY_ROWS))
def test_x_o_extremity_refuses_bad_input(changes, expect):
    args = dict(x=np.arange(8.0).reshape(4, 2), x_o=np.zeros(2)) | changes
    _run(lambda: sk.inference.x_o_extremity(**args), expect)


# --- sk.simulate and simulators ----------------------------------------------------------------


def _sim(fn):
    return sk.Simulator(PRIOR, fn)


def _same_as_key_0(result, _):
    expected = sk.simulate(jax.random.key(0), SIM, 4)
    np.testing.assert_array_equal(result.x, expected.x)


def _dropped_one(result, _):
    assert result.num_dropped == 1 and result.num_valid == 3, result


def _simulate_warns(**kwargs):
    with pytest.warns(RuntimeWarning, match="sk.simulate dropped 1 of 4 simulations"):
        return sk.simulate(**kwargs)


SIMULATE_ROWS = [
    (
        "key-int",
        dict(key=0),
        Raises(
            TypeError,
            "sk.simulate: `key` must be one JAX PRNG key such as jax.random.key(0), got int 0",
        ),
    ),
    (
        "key-batch",
        dict(key=jax.random.split(jax.random.key(0), 2)),
        Raises(TypeError, "sk.simulate: `key` must be one JAX PRNG key"),
    ),
    (
        "key-legacy",
        dict(key=jax.random.PRNGKey(0)),
        Gives(_same_as_key_0, "the same simulations as jax.random.key(0)"),
    ),
    (
        "not-a-simulator",
        dict(sim_or_task=_simulate),
        Raises(TypeError, "sk.simulate: `sim_or_task`: expected an sk.Simulator or a task"),
    ),
    (
        "num-zero",
        dict(num_simulations=0),
        Raises(ValueError, "sk.simulate: `num_simulations` must be a positive integer, got 0"),
    ),
    (
        "num-bool",
        dict(num_simulations=True),
        Raises(ValueError, "`num_simulations` must be a positive integer, got True"),
    ),
    (
        "num-float",
        dict(num_simulations=4.0),
        Raises(ValueError, "`num_simulations` must be a positive integer, got 4.0"),
    ),
    (
        "num-numpy-int",
        dict(num_simulations=np.int64(4)),
        Gives(lambda r, _: _check(r.x.shape == (4, 2)), "NumPy integers are integers"),
    ),
    (
        "batch_size-zero",
        dict(batch_size=0),
        Raises(ValueError, "`batch_size` must be a positive integer, got 0"),
    ),
    (
        "theta-wrong-shape",
        dict(theta=np.zeros((4, 3))),
        Raises(ValueError, "sk.simulate: `theta` must have shape (4, 2), got (4, 3)"),
    ),
    (
        "theta-nan-row",
        dict(theta=_with(np.zeros((4, 2)), (2, 0), np.nan)),
        Gives(_dropped_one, "the row is dropped, with one RuntimeWarning"),
    ),
    (
        "returns-None",
        dict(sim_or_task=_sim(lambda k, th: None)),
        Raises(TypeError, "returned None; it must return one array of a fixed shape"),
    ),
    (
        "returns-list",
        dict(sim_or_task=_sim(lambda k, th: [th[0], th[1]])),
        Raises(TypeError, "returned a list; it must return one array of a fixed shape"),
    ),
    (
        "returns-scalar",
        dict(sim_or_task=_sim(lambda k, th: th[0])),
        Raises(ValueError, "returned a scalar; it must return one array"),
    ),
    (
        "returns-complex",
        dict(sim_or_task=_sim(lambda k, th: jnp.zeros(2, jnp.complex64))),
        Raises(TypeError, "returned an array of dtype complex64"),
    ),
    (
        "shape-depends-on-theta",
        dict(sim_or_task=_sim(lambda k, th: jnp.zeros(int(th[0] > 0) + 1))),
        Raises(
            ValueError,
            "its output shape or its Python control flow depends on the value of θ",
        ),
    ),
    (
        "branch-on-theta",
        dict(sim_or_task=_sim(lambda k, th: th if th[0] > 0 else -th)),
        Raises(
            ValueError,
            "must return one array of a fixed shape (one observation x, e.g. shape (dim_x,))",
        ),
    ),
    (
        "wrong-signature",
        dict(sim_or_task=_sim(lambda th: th)),
        Raises(TypeError, "as simulate(key, theta), with theta of shape (2,), failed"),
    ),
]


@pytest.mark.parametrize("changes, expect", _table(SIMULATE_ROWS))
def test_simulate_refuses_bad_input(changes, expect):
    args = dict(key=jax.random.key(0), sim_or_task=SIM, num_simulations=4) | changes
    call = (
        _simulate_warns if "theta" in changes and np.isnan(changes["theta"]).any() else sk.simulate
    )
    _run(lambda: call(**args), expect)


def test_simulate_names_the_simulator():
    def my_broken_simulator(key, theta):
        return None

    with pytest.raises(
        TypeError, match=r"the simulator `[\w.<>]*my_broken_simulator` returned None"
    ):
        sk.simulate(jax.random.key(0), _sim(my_broken_simulator), 4)


SIMULATOR_ROWS = [
    (
        "prior-string",
        lambda: sk.Simulator("uniform", _simulate),
        Raises(TypeError, "Simulator: `prior` must be a numpyro Distribution"),
    ),
    (
        "prior-scalar",
        lambda: sk.Simulator(dist.Normal(0.0, 1.0), _simulate),
        Raises(ValueError, "Simulator: the prior must have event shape (dim_theta,)"),
    ),
    (
        "prior-batch",
        lambda: sk.Simulator(dist.Normal(jnp.zeros((3, 2)), 1.0).to_event(1), _simulate),
        Raises(ValueError, "Simulator: the prior must have batch shape ()"),
    ),
    (
        "simulate-not-callable",
        lambda: sk.Simulator(PRIOR, "simulate"),
        Raises(TypeError, "Simulator: `simulate` must be a callable"),
    ),
    (
        "theta_names-length",
        lambda: sk.Simulator(PRIOR, _simulate, theta_names=("a",)),
        Raises(ValueError, "Simulator: 1 theta_names given for dim_theta = 2"),
    ),
]


@pytest.mark.parametrize("call, expect", _table(SIMULATOR_ROWS))
def test_simulator_refuses_bad_input(call, expect):
    _run(call, expect)


# --- from_numpyro ------------------------------------------------------------------------------


def _good_model(x=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.sample("x", dist.Normal(mu, 1.0).expand([3]).to_event(1), obs=x)


def _dependent_support(x=None):
    a = numpyro.sample("a", dist.Uniform(1.0, 2.0))
    b = numpyro.sample("b", dist.Uniform(0.0, a))
    numpyro.sample("x", dist.Normal(b, 0.1), obs=x)


def _discrete_latent(x=None):
    k = numpyro.sample("k", dist.Bernoulli(0.5))
    numpyro.sample("x", dist.Normal(k, 1.0), obs=x)


def _prior_keeps_its_draws(sim, _):
    """The fix of a dependent support must not freeze it: every prior draw is inside."""
    theta = sim.prior.sample(jax.random.key(0), (100,))
    assert bool(jnp.all(sim.prior.support(theta)))


NUMPYRO_ROWS = [
    (
        "model-not-callable",
        lambda: sk.from_numpyro(3, "x"),
        Raises(TypeError, "sk.from_numpyro: `model` must be a numpyro model (a callable"),
    ),
    (
        "observed-not-str",
        lambda: sk.from_numpyro(_good_model, 1),
        Raises(TypeError, "`observed` must be the name (a str)"),
    ),
    (
        "observed-missing",
        lambda: sk.from_numpyro(_good_model, "y"),
        Raises(
            ValueError,
            "sk.from_numpyro: the model has no sample site 'y'; its sample sites are ['mu', 'x']",
        ),
    ),
    (
        "observed-given-data",
        lambda: sk.from_numpyro(_good_model, "x", model_kwargs={"x": jnp.zeros(3)}),
        Raises(ValueError, "the model was given data for site 'x'"),
    ),
    (
        "key-int",
        lambda: sk.from_numpyro(_good_model, "x", key=0),
        Raises(TypeError, "sk.from_numpyro: `key` must be one JAX PRNG key"),
    ),
    (
        "discrete-latent",
        lambda: sk.from_numpyro(_discrete_latent, "x"),
        Raises(ValueError, "site 'k' is discrete (BernoulliProbs"),
    ),
    (
        "support-depends-on-latent",
        lambda: sk.from_numpyro(_dependent_support, "x"),
        Raises(ValueError, "the support of site 'b'"),
    ),
    (
        "support-depends-names-parent",
        lambda: sk.from_numpyro(_dependent_support, "x"),
        Raises(ValueError, "depends on the latent site(s) ['a']"),
    ),
    (
        "fixed-supports-accepted",
        lambda: sk.from_numpyro(_good_model, "x"),
        Gives(_prior_keeps_its_draws, "the prior's draws lie in its support"),
    ),
]


@pytest.mark.parametrize("call, expect", _table(NUMPYRO_ROWS))
def test_from_numpyro_refuses_bad_models(call, expect):
    _run(call, expect)


# --- tasks -------------------------------------------------------------------------------------

TASK = sk.tasks.get("two_moons")


def _write_into(getter):
    def call():
        a = getter()
        a[0] = 99.0

    return call


TASK_ROWS = [
    (
        "reference-samples-read-only",
        _write_into(lambda: TASK.reference_samples(1)),
        Raises(ValueError, "assignment destination is read-only"),
    ),
    (
        "observation-read-only",
        _write_into(lambda: TASK.observation(1)),
        Raises(ValueError, "assignment destination is read-only"),
    ),
    (
        "true-parameters-read-only",
        _write_into(lambda: TASK.true_parameters(1)),
        Raises(ValueError, "assignment destination is read-only"),
    ),
    (
        "observation-zero",
        lambda: TASK.observation(0),
        Raises(ValueError, "observation index must be an integer in 1..10, got 0"),
    ),
    (
        "observation-eleven",
        lambda: TASK.reference_samples(11),
        Raises(ValueError, "observation index must be an integer in 1..10, got 11"),
    ),
    (
        "observation-bool",
        lambda: TASK.observation(True),
        Raises(ValueError, "observation index must be an integer in 1..10, got True"),
    ),
    (
        "observation-float",
        lambda: TASK.observation(1.0),
        Raises(ValueError, "observation index must be an integer in 1..10, got 1.0"),
    ),
    ("unknown-task", lambda: sk.tasks.get("nope"), Raises(ValueError, "nope")),
]


@pytest.mark.parametrize("call, expect", _table(TASK_ROWS))
def test_tasks_refuse_bad_input(call, expect):
    _run(call, expect)


def test_task_arrays_are_unchanged_by_a_failed_write():
    before = TASK.reference_samples(1).copy()
    with pytest.raises(ValueError, match="read-only"):
        TASK.reference_samples(1)[:] = 0.0
    np.testing.assert_array_equal(TASK.reference_samples(1), before)
    mine = TASK.observation(1).copy()  # a copy is the caller's to change
    mine[0] = 99.0
    assert TASK.observation(1)[0] != 99.0


# --- diagnostics -------------------------------------------------------------------------------

RNG = np.random.default_rng(0)
A, B = RNG.normal(size=(40, 2)), RNG.normal(size=(40, 2))

C2ST_ROWS = [
    (
        "samples-3-rows",
        dict(samples=A[:3]),
        Raises(
            ValueError,
            "c2st: `samples` has 3 rows; 5-fold cross-validation needs at least 5 samples per set",
        ),
    ),
    ("reference-empty", dict(reference=B[:0]), Raises(ValueError, "c2st: `reference` has 0 rows")),
    (
        "samples-1d",
        dict(samples=A[:, 0]),
        Raises(ValueError, "c2st: `samples` must have shape (n, d), got shape (40,)"),
    ),
    (
        "columns-differ",
        dict(reference=np.c_[B, B]),
        Raises(ValueError, "`samples` and `reference` must have the same number of columns d"),
    ),
    (
        "samples-nan",
        dict(samples=_with(A, (0, 0), np.nan)),
        Raises(ValueError, "c2st: `samples` holds 1 rows with NaN or inf"),
    ),
    (
        "reference-inf",
        dict(reference=_with(B, (1, 1), np.inf)),
        Raises(ValueError, "c2st: `reference` holds 1 rows with NaN or inf"),
    ),
    (
        "samples-strings",
        dict(samples=np.array([["a", "b"]] * 10)),
        Raises(TypeError, "c2st: `samples` must be a numeric array"),
    ),
    (
        "unequal-sizes",
        dict(reference=RNG.normal(size=(80, 2))),
        Warns(UserWarning, "c2st: `samples` has 40 rows and `reference` 80; the larger set is"),
    ),
    (
        "num_folds-one",
        dict(num_folds=1),
        Raises(ValueError, "c2st: `num_folds` must be at least 2, got 1"),
    ),
    (
        "num_folds-bool",
        dict(num_folds=True),
        Raises(ValueError, "c2st: `num_folds` must be a positive integer, got True"),
    ),
]


@pytest.mark.parametrize("changes, expect", _table(C2ST_ROWS))
def test_c2st_refuses_bad_input(changes, expect):
    args = dict(samples=A, reference=B) | changes
    _run(lambda: sk.diagnostics.c2st(**args), expect)


_REPLICATES = RNG.normal(size=(20, 2))
PREDICTIVE_CHECK_ROWS = [
    (
        "replicates-other-shape",
        dict(replicates=RNG.normal(size=(20, 3))),
        Raises(ValueError, "`replicates` must have shape (m, *x_o.shape) = (m, 2), got shape"),
    ),
    (
        "one-replicate",
        dict(replicates=_REPLICATES[:1]),
        Raises(ValueError, "predictive_check: needs at least 2 replicates, got 1"),
    ),
    (
        "replicates-nan",
        dict(replicates=_with(_REPLICATES, (3, 1), np.nan)),
        Raises(ValueError, "predictive_check: `replicates` holds 1 rows with NaN or inf"),
    ),
    (
        "x_o-inf",
        dict(x_o=np.array([0.0, np.inf])),
        Raises(ValueError, "predictive_check: `x_o` holds 1 rows with NaN or inf"),
    ),
    (
        "replicates-strings",
        dict(replicates=np.array([["a", "b"]] * 20)),
        Raises(TypeError, "predictive_check: `replicates` must be a numeric array"),
    ),
    ("iid-string", dict(iid="yes"), Raises(TypeError, "`iid` must be True or False, got 'yes'")),
    (
        "iid-one-observation",
        dict(iid=True),
        Raises(
            ValueError, "with iid=True, `x_o` must be a stack (n_obs, *x_shape), got shape (2,)"
        ),
    ),
    ("level-zero", dict(level=0), Raises(ValueError, "`level` must be a number in (0, 1), got 0")),
    ("level-bool", dict(level=True), Raises(ValueError, "`level` must be a number in (0, 1)")),
]


@pytest.mark.parametrize("changes, expect", _table(PREDICTIVE_CHECK_ROWS))
def test_predictive_check_refuses_bad_input(changes, expect):
    args = dict(replicates=_REPLICATES, x_o=np.zeros(2)) | changes
    _run(lambda: sk.diagnostics.predictive_check(**args), expect)


_PRIOR_3D = dist.Uniform(-jnp.ones(3), jnp.ones(3)).to_event(1)
POSTERIOR_PREDICTIVE_CHECK_ROWS = [
    (
        "key-int",
        dict(key=0),
        Raises(TypeError, "`key` must be one JAX PRNG key such as jax.random.key(0), got int 0"),
    ),
    (
        "posterior-none",
        dict(posterior=None),
        Raises(TypeError, "`posterior` must be a trained posterior (an sk.inference.Abstract"),
    ),
    (
        "simulator-other-dim_theta",
        dict(simulator=sk.Simulator(_PRIOR_3D, lambda k, th: th[:2])),
        Raises(ValueError, "the posterior has dim_theta = 2 but the simulator's prior has 3"),
    ),
    (
        "simulator-other-x_shape",
        dict(simulator=sk.Simulator(PRIOR, lambda k, th: jnp.r_[th, th[:1]])),
        Raises(ValueError, "the simulator returns x of shape (3,), the posterior expects (2,)"),
    ),
    (
        "x_o-other-shape",
        dict(x_o=np.zeros(3)),
        Raises(ValueError, "`x_o` must have the posterior's x_shape (2,) or be a stack (n_obs, 2)"),
    ),
    (
        "x_o-empty-stack",
        dict(x_o=np.zeros((0, 2))),
        Raises(ValueError, "`x_o` must have the posterior's x_shape (2,) or be a stack (n_obs, 2)"),
    ),
    (
        "x_o-nan",
        dict(x_o=np.array([np.nan, 0.0])),
        Raises(ValueError, "posterior_predictive_check: `x_o` holds 1 rows with NaN or inf"),
    ),
    (
        "num_simulations-one",
        dict(num_simulations=1),
        Raises(ValueError, "posterior_predictive_check: needs at least 2 simulations, got 1"),
    ),
    (
        "num_simulations-bool",
        dict(num_simulations=True),
        Raises(ValueError, "`num_simulations` must be a positive integer, got True"),
    ),
    ("level-above-one", dict(level=1.5), Raises(ValueError, "`level` must be a number in (0, 1)")),
    ("warn-string", dict(warn="yes"), Raises(TypeError, "`warn` must be True or False, got 'yes'")),
]


@pytest.mark.parametrize("changes, expect", _table(POSTERIOR_PREDICTIVE_CHECK_ROWS))
def test_posterior_predictive_check_refuses_bad_input(problem, changes, expect):
    args = dict(
        key=jax.random.key(0),
        posterior=_trained(METHODS[0], problem),
        simulator=SIM,
        x_o=np.zeros(2),
        num_simulations=20,
    )
    _run(lambda: sk.diagnostics.posterior_predictive_check(**(args | changes)), expect)


KEY_ROWS = [
    (
        "tarp-int-key",
        lambda: sk.diagnostics.tarp(0, np.zeros((10, 5, 2)), np.zeros((5, 2))),
        Raises(TypeError, "`key` must be one JAX PRNG key such as jax.random.key(0), got int 0"),
    ),
    (
        "calibrate-int-key",
        lambda: sk.diagnostics.calibrate(0, None, SIM, 10),
        Raises(TypeError, "`key` must be one JAX PRNG key such as jax.random.key(0), got int 0"),
    ),
]


@pytest.mark.parametrize("call, expect", _table(KEY_ROWS))
def test_one_key_policy_in_the_diagnostics(call, expect):
    _run(call, expect)


# --- sk.mcmc -----------------------------------------------------------------------------------

_NORMAL_1D = dist.Normal(jnp.zeros(1), 1.0).to_event(1)
MCMC_ROWS = [
    ("sampler-string", dict(sampler="nuts"), Raises(TypeError, "`sampler` must be sk.mcmc.NUTS()")),
    (
        "log_density-number",
        dict(log_density=3.0),
        Raises(TypeError, "`log_density` must be a func"),
    ),
    ("prior-string", dict(prior="normal"), Raises(TypeError, "`prior` must be a numpyro Distrib")),
    (
        "num_samples-zero",
        dict(num_samples=0),
        Raises(ValueError, "`num_samples` must be a positive integer"),
    ),
    (
        "init-wrong-shape",
        dict(init=jnp.zeros((3, 1))),
        Raises(ValueError, "`init` must have shape (num_chains, d)"),
    ),
    (
        "slice-one-chain",
        dict(sampler=sk.mcmc.EnsembleSlice(), num_chains=1),
        Raises(ValueError, "EnsembleSlice needs at least 2 chains"),
    ),
    (
        "slice-odd-chains",
        dict(sampler=sk.mcmc.EnsembleSlice(), num_chains=3),
        Raises(ValueError, "needs an even number of chains, got num_chains=3"),
    ),
    (
        "key-int",
        dict(key=0),
        Raises(TypeError, "`key` must be one JAX PRNG key such as jax.random.key(0)"),
    ),
    (
        "resampling-bool",
        dict(resampling=True),
        Raises(TypeError, "`resampling` must be sk.mcmc.ChainMixtureResampling(...) or None"),
    ),
]

MCMC_SETTINGS_ROWS = [
    (
        "resampling-one-draw-per-chain",
        lambda: sk.mcmc.ChainMixtureResampling(draws_per_chain=1),
        Raises(ValueError, "draws_per_chain must be ≥ 2 (a covariance per chain), got 1"),
    ),
    (
        "resampling-zero-candidates",
        lambda: sk.mcmc.ChainMixtureResampling(candidates_per_sample=0),
        Raises(ValueError, "candidates_per_sample must be a positive integer, got 0"),
    ),
    (
        "resampling-negative-moves",
        lambda: sk.mcmc.ChainMixtureResampling(num_moves=-1),
        Raises(ValueError, "num_moves must be a non-negative integer, got -1"),
    ),
    (
        "resampling-df-zero",
        lambda: sk.mcmc.ChainMixtureResampling(df=0.0),
        Raises(ValueError, "ChainMixtureResampling: df must be > 0, got 0.0"),
    ),
    (
        "resampling-ess-fraction-above-one",
        lambda: sk.mcmc.ChainMixtureResampling(min_ess_fraction=2.0),
        Raises(ValueError, "min_ess_fraction must lie in (0, 1], got 2.0"),
    ),
    (
        "mcmc-config-resampling-string",
        lambda: sk.mcmc.MCMCConfig(resampling="sir"),
        Raises(TypeError, "MCMCConfig: `resampling` must be sk.mcmc.ChainMixtureResampling(...)"),
    ),
]
"""The settings objects of ``sk.mcmc``: refused when built, before any sampling."""


@pytest.mark.parametrize("call, expect", _table(MCMC_SETTINGS_ROWS))
def test_mcmc_settings_refuse_bad_values(call, expect):
    _run(call, expect)


@pytest.mark.parametrize("changes, expect", _table(MCMC_ROWS))
def test_mcmc_sample_refuses_bad_arguments(changes, expect):
    args = dict(
        key=jax.random.key(0),
        log_density=lambda th: -jnp.sum(th**2),
        prior=_NORMAL_1D,
        num_samples=10,
        num_chains=2,
        num_warmup=5,
    )
    _run(lambda: sk.mcmc.sample(**(args | changes)), expect)


def _one_site_model(x=None):
    numpyro.sample("x", dist.Normal(numpyro.sample("m", dist.Normal(0.0, 1.0)), 1.0), obs=x)


_EXACT = sk.Simulator(
    _NORMAL_1D,
    lambda key, theta: theta + jax.random.normal(key, (1,)),
    lambda theta, x: dist.Normal(theta, 1.0).log_prob(x).sum(),
)
REFERENCE_ROWS = [
    # every row fails before the chains run
    (
        "model-without-observed",
        dict(problem=_one_site_model),
        Raises(ValueError, "a numpyro model needs `observed`"),
    ),
    (
        "model-unknown-site",
        dict(problem=_one_site_model, observed="y"),
        Raises(ValueError, "no sample site 'y'"),
    ),
    (
        "simulator-without-likelihood",
        dict(problem=sk.Simulator(_NORMAL_1D, _EXACT.simulate)),
        Raises(ValueError, "no exact likelihood"),
    ),
    ("problem-string", dict(problem="two_moons"), Raises(TypeError, "`problem` must be a task")),
    (
        "x_o-nan",
        dict(x_o=jnp.array([jnp.nan])),
        Raises(ValueError, "`x_o` contains 1 NaN or inf"),
    ),
    (
        "iid-empty-stack",
        dict(x_o=jnp.zeros((0, 1)), iid=True),
        Raises(ValueError, "iid=True, `x_o` must be a stack (n_obs"),
    ),
    (
        "iid-scalar",
        dict(x_o=jnp.float32(0.0), iid=True),
        Raises(ValueError, "iid=True, `x_o` must be a stack (n_obs"),
    ),
]


@pytest.mark.parametrize("changes, expect", _table(REFERENCE_ROWS))
def test_reference_posterior_refuses_bad_problems(changes, expect):
    args = dict(key=jax.random.key(0), problem=_EXACT, x_o=jnp.zeros(1), num_samples=10)
    _run(lambda: sk.mcmc.reference_posterior(**(args | changes)), expect)


# --- the command line ---------------------------------------------------------------------------

CLI_ROWS = [
    # every row is refused before any simulation or training, and creates no output folder
    ("num-samples-small", "--num-samples 3", "--num-samples must be at least 5"),
    ("max-epochs-zero", "--max-epochs 0", "--max-epochs must be at least 1"),
    (
        "calibration-negative",
        "--calibration-simulations -1",
        "--calibration-simulations must be at least 0",
    ),
    ("num-iid-negative", "--num-iid -1", "--num-iid must be at least 0"),
    (
        "predictive-negative",
        "--predictive-simulations -1",
        "--predictive-simulations must be at least 0",
    ),
    (
        "predictive-one",
        "--predictive-simulations 1",
        "--predictive-simulations must be 0 (off) or at least 2",
    ),
    (
        "snpe-strategy-for-nle",
        "--method snle --snpe apt",
        "--snpe chooses how --method snpe spends its rounds; got --method snle",
    ),
    (
        "num-iid-npe",
        "--num-iid 3",
        "i.i.d. observations (nle, nre, npse); npe's posterior takes one observation",
    ),
    ("num-iid-fmpe", "--num-iid 3 --method fmpe", "fmpe's posterior takes one observation"),
    (
        "num-iid-sequential",
        "--num-iid 3 --method snle",
        "a sequential posterior is fitted to one observation",
    ),
]


@pytest.mark.parametrize("options, message", [pytest.param(o, m, id=n) for n, o, m in CLI_ROWS])
def test_run_refuses_bad_options_before_any_work(tmp_path, options, message):
    from sbi_kit.cli import main

    with pytest.raises(SystemExit, match=re.escape(message)):
        main(["run", *options.split(), "--out", str(tmp_path / "never")])
    assert not (tmp_path / "never").exists()


# --- PFNs --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gp_pfn():
    """The shipped GP-PFN (1-d inputs, max_context 50): no training needed."""
    return sk.PFN.pretrained("gp")


def _finite_mean(d, _):
    assert bool(jnp.all(jnp.isfinite(d.mean)))


def _finite_far_log_prob(d, _):
    assert bool(jnp.all(jnp.isfinite(d.log_prob(jnp.full(d.batch_shape, 1e4)))))


def _masked_nan_padding_is_ignored(d, pfn):
    unpadded = pfn.predict([[0.2]], [0.5], [[0.4]])
    np.testing.assert_allclose(np.asarray(d.logits), np.asarray(unpadded.logits), atol=1e-5)


_X1, _Y1, _Q1 = [[0.2]], [0.5], [[0.4]]
PFN_ROWS = [
    (
        "predict-x_context-dimension",
        lambda p: p.predict([[0.2, 0.3]], _Y1, _Q1),
        Raises(ValueError, "`x_context` has 2 input dimension(s); this PFN was trained on inputs"),
    ),
    (
        "predict-x_query-dimension",
        lambda p: p.predict(_X1, _Y1, [[0.4, 0.1]]),
        Raises(ValueError, "`x_query` has 2 input dimension(s)"),
    ),
    (
        "predict-nan-y_context",
        lambda p: p.predict(_X1, [np.nan], _Q1),
        Raises(ValueError, "`y_context` contains 1 NaN or inf value(s)"),
    ),
    (
        "predict-inf-x_query",
        lambda p: p.predict(_X1, _Y1, [[np.inf]]),
        Raises(ValueError, "`x_query` contains 1 NaN or inf value(s)"),
    ),
    (
        "predict-length-mismatch",
        lambda p: p.predict(_X1, [0.5, 0.6], _Q1),
        Raises(ValueError, "must hold the same number of points, got 1 and 2"),
    ),
    (
        "predict-context-too-long",
        lambda p: p.predict(np.zeros((51, 1)), np.zeros(51), _Q1),
        Raises(ValueError, "the context has 51 points; this PFN was trained on at most 50"),
    ),
    (
        "predict-mask-dtype",
        lambda p: p.predict(_X1, _Y1, _Q1, context_mask=[1]),
        Raises(ValueError, "`context_mask` must be booleans of shape (1,)"),
    ),
    (
        "predict-string",
        lambda p: p.predict("x", _Y1, _Q1),
        Raises(TypeError, "`x_context` must be an array"),
    ),
    (
        "predict-y-outside-training-range",
        lambda p: p.predict(_X1, [80.0], _Q1),
        Warns(UserWarning, "1 context value(s) of y lie outside"),
    ),
    (
        "predict-empty-context-is-the-prior-predictive",
        lambda p: p.predict(np.zeros((0, 1)), np.zeros(0), _Q1),
        Gives(_finite_mean, "a finite prior predictive"),
    ),
    (
        "predict-query-y-far-outside-the-borders",
        lambda p: p.predict(_X1, _Y1, _Q1),
        Gives(_finite_far_log_prob, "finite log-density from the half-normal tails"),
    ),
    (
        "predict-nan-padding-under-a-mask",
        lambda p: p.predict([[0.2], [np.nan]], [0.5, np.nan], _Q1, context_mask=[True, False]),
        Gives(_masked_nan_padding_is_ignored, "the padded context equals the short one"),
    ),
    (
        "predict_batched-one-dataset",
        lambda p: p.predict_batched(_X1, _Y1, _Q1),
        Raises(ValueError, "`y_context` must"),
    ),
    (
        "predict_batched-length-mismatch",
        lambda p: p.predict_batched(np.zeros((2, 3, 1)), np.zeros((2, 4)), np.zeros((2, 1, 1))),
        Raises(ValueError, "must hold the same number of points for every dataset"),
    ),
    (
        "predict_batched-query-batch-mismatch",
        lambda p: p.predict_batched(np.zeros((2, 3, 1)), np.zeros((2, 3)), np.zeros((3, 1, 1))),
        Raises(ValueError, "2 datasets in the context, 3 in `x_query`"),
    ),
    (
        "predict_batched-input-dim",
        lambda p: p.predict_batched(np.zeros((2, 3, 2)), np.zeros((2, 3)), np.zeros((2, 1, 1))),
        Raises(ValueError, "`x_context` has 2 input dimension(s); this PFN was trained on inputs"),
    ),
    (
        "predict_batched-context-too-long",
        lambda p: p.predict_batched(np.zeros((2, 51, 1)), np.zeros((2, 51)), np.zeros((2, 1, 1))),
        Raises(ValueError, "a context has 51 points; this PFN was trained on at most 50"),
    ),
    (
        "predict_batched-mask-shape",
        lambda p: p.predict_batched(
            np.zeros((2, 3, 1)),
            np.zeros((2, 3)),
            np.zeros((2, 1, 1)),
            context_mask=np.ones(3, bool),
        ),
        Raises(ValueError, "`context_mask` must be booleans of shape (2, 3)"),
    ),
    (
        "predict_batched-nan-query",
        lambda p: p.predict_batched(
            np.zeros((2, 3, 1)), np.zeros((2, 3)), np.full((2, 1, 1), np.nan)
        ),
        Raises(ValueError, "`x_query` contains 2 NaN or inf value(s)"),
    ),
    (
        "predict_batched-y-outside-training-range",
        lambda p: p.predict_batched(
            np.zeros((2, 3, 1)), np.array([[0.0, 80.0, 0.0], [90.0, 0.0, 0.0]]), np.zeros((2, 1, 1))
        ),
        Warns(UserWarning, "2 context value(s) of y lie outside"),
    ),
    (
        "parameter_posterior-without-head",
        lambda p: p.parameter_posterior(_X1, _Y1),
        Raises(ValueError, "this PFN has no parameter head"),
    ),
    (
        "extrapolate-input_dim",
        lambda p: sk.pfn.extrapolate(p, [0.1, 0.2], num_epochs=0),
        Raises(ValueError, "`num_epochs` must be a positive integer, got 0"),
    ),
    (
        "extrapolate-horizon",
        lambda p: sk.pfn.extrapolate(p, [0.1, 0.2], horizon=2),
        Raises(ValueError, "`horizon` must be an integer in (2, 100]"),
    ),
    (
        "extrapolate-nan-curve",
        lambda p: sk.pfn.extrapolate(p, [0.1, np.nan]),
        Raises(ValueError, "`curve` contains 1 NaN or inf value(s)"),
    ),
    (
        "extrapolate-not-a-pfn",
        lambda p: sk.pfn.extrapolate("lc", [0.1]),
        Raises(TypeError, "`pfn` must be a TrainedPFN, got str"),
    ),
    (
        "pretrained-name",
        lambda p: sk.PFN.pretrained("tabpfn"),
        Raises(ValueError, "`name` must be one of ['gp', 'lc'], got 'tabpfn'"),
    ),
    (
        "fit-prior-not-a-dataset-prior",
        lambda p: sk.PFN(steps_per_call=1).fit(jax.random.key(0), PRIOR, steps=1),
        Raises(TypeError, "`prior` must be an sk.pfn.AbstractDatasetPrior"),
    ),
    (
        "fit-int-key",
        lambda p: sk.PFN().fit(0, sk.pfn.GPPrior(sk.pfn.RBF(0.2, 1.0), 0.1), steps=1),
        Raises(TypeError, "`key` must be one JAX PRNG key"),
    ),
    (
        "fit-steps-zero",
        lambda p: sk.PFN().fit(
            jax.random.key(0), sk.pfn.GPPrior(sk.pfn.RBF(0.2, 1.0), 0.1), steps=0
        ),
        Raises(ValueError, "steps must be a positive integer, got 0"),
    ),
    (
        "settings-num_points",
        lambda p: sk.PFN(max_context=10, num_points=10),
        Raises(ValueError, "PFN: num_points must exceed max_context"),
    ),
    (
        "settings-heads",
        lambda p: sk.PFN(width=10, num_heads=4),
        Raises(ValueError, "PFN: num_heads must divide width"),
    ),
    (
        "settings-min_context",
        lambda p: sk.PFN(min_context=60),
        Raises(ValueError, "PFN: min_context must be an integer in [0, max_context=50]"),
    ),
    (
        "settings-matmul_dtype",
        lambda p: sk.PFN(matmul_dtype="float16"),
        Raises(ValueError, "PFN: matmul_dtype must be 'float32' or 'bfloat16'"),
    ),
    (
        "numpyro-prior-not-callable",
        lambda p: sk.pfn.NumpyroPrior("model", input_dim=1),
        Raises(TypeError, "NumpyroPrior: `model` must be a numpyro model"),
    ),
    (
        "gp-prior-kernel",
        lambda p: sk.pfn.GPPrior("rbf", noise_std=0.1),
        Raises(TypeError, "GPPrior: `kernel` must be a kernel object"),
    ),
]


@pytest.mark.parametrize("call, expect", _table(PFN_ROWS))
def test_pfn_refuses_bad_input(gp_pfn, call, expect):
    _run(lambda: call(gp_pfn), expect, gp_pfn)


# --- the persistent compilation cache -----------------------------------------------------------


def _cache_rows(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    return {
        "path-int": (3, Raises(TypeError, "`path` must be a folder path or None, got 3")),
        "path-bytes": (b"/tmp/x", Raises(TypeError, "`path` must be a folder path or None")),
        "path-under-a-file": (
            blocker / "sub",
            Raises(ValueError, "set_compilation_cache: the folder"),
        ),
    }


@pytest.mark.parametrize("name", ["path-int", "path-bytes", "path-under-a-file"])
def test_set_compilation_cache_refuses_bad_input(name, tmp_path, restore_compilation_cache):
    before = jax.config.jax_compilation_cache_dir
    path, expect = _cache_rows(tmp_path)[name]
    _run(lambda: sk.set_compilation_cache(path), expect)
    assert jax.config.jax_compilation_cache_dir == before, "a refused call changes nothing"


# --- black-box simulators, cluster execution and the ODE/SDE helpers ---------------------------

_BOX_PRIOR = dist.Normal(jnp.zeros(2), 1.0).to_event(1)
_TS = jnp.linspace(0.0, 2.0, 6)


def _box_identity(seed, theta):
    return theta


def _logistic(t, y, theta):
    return theta[0] * y * (1 - y / theta[1])


def _jax_sim():
    return sk.Simulator(_BOX_PRIOR, lambda k, th: th)


def _box():
    return sk.simulators.BlackBoxSimulator(_BOX_PRIOR, _box_identity)


def _with_pool(call):
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(1) as pool:
        return call(pool)


SIMULATOR_ENGINE_ROWS = [
    (
        "simulate-executor-not-an-executor",
        lambda: sk.simulate(jax.random.key(0), _box(), 5, executor=object()),
        Raises(
            TypeError,
            "`executor` must be a concurrent.futures.Executor",
        ),
    ),
    (
        "simulate-max_in_flight-zero",
        lambda: sk.simulate(jax.random.key(0), _box(), 5, max_in_flight=0),
        Raises(ValueError, "`max_in_flight` must be a positive integer, got 0"),
    ),
    (
        "simulate-black-box-batch_size-float",
        lambda: sk.simulate(jax.random.key(0), _box(), 5, batch_size=2.0),
        Raises(ValueError, "`batch_size` must be a positive integer, got 2.0"),
    ),
    (
        "simulate-black-box-theta-shape",
        lambda: sk.simulate(jax.random.key(0), _box(), 5, theta=np.zeros((5, 3))),
        Raises(ValueError, "`theta` must have shape (5, 2)"),
    ),
    (
        "simulate-executor-for-a-jax-simulator",
        lambda: _with_pool(
            lambda pool: sk.simulate(jax.random.key(0), _jax_sim(), 5, executor=pool)
        ),
        Raises(TypeError, "`executor` is for a sk.simulators.BlackBoxSimulator"),
    ),
    (
        "simulate-max_in_flight-for-a-jax-simulator",
        lambda: sk.simulate(jax.random.key(0), _jax_sim(), 5, max_in_flight=4),
        Raises(TypeError, "`max_in_flight` is for a sk.simulators.BlackBoxSim"),
    ),
    (
        "BlackBoxSimulator-simulate-not-callable",
        lambda: sk.simulators.BlackBoxSimulator(_BOX_PRIOR, "simulate.exe"),
        Raises(TypeError, "BlackBoxSimulator: `simulate` must be a callable"),
    ),
    (
        "BlackBoxSimulator-prior-string",
        lambda: sk.simulators.BlackBoxSimulator("normal", _box_identity),
        Raises(TypeError, "BlackBoxSimulator: `prior` must be a numpyro"),
    ),
    (
        "BlackBoxSimulator-scalar-prior",
        lambda: sk.simulators.BlackBoxSimulator(dist.Normal(0.0, 1.0), _box_identity),
        Raises(ValueError, "BlackBoxSimulator: the prior must have event shape"),
    ),
    (
        "BlackBoxSimulator-theta_names-count",
        lambda: sk.simulators.BlackBoxSimulator(_BOX_PRIOR, _box_identity, theta_names=("a",)),
        Raises(ValueError, "1 theta_names given for dim_theta = 2"),
    ),
    (
        "ODE-times-not-increasing",
        lambda: sk.simulators.ODE(_logistic, jnp.ones(1), jnp.array([1.0, 0.5])),
        Raises(ValueError, "strictly increasing"),
    ),
    (
        "ODE-vector_field-string",
        lambda: sk.simulators.ODE("f", jnp.ones(1), _TS),
        Raises(TypeError, "`vector_field` must be"),
    ),
    (
        "ODE-solver-string",
        lambda: sk.simulators.ODE(_logistic, jnp.ones(1), _TS, solver="tsit5"),
        Raises(TypeError, "`solver` must be a diffrax solver"),
    ),
    (
        "ODE-vector-field-shape",
        lambda: sk.simulators.ODE(lambda t, y, th: jnp.ones(3), jnp.ones(1), _TS).solve(
            jnp.ones(2)
        ),
        Raises(ValueError, "returned shape (3,) for a state of shape (1,)"),
    ),
    (
        "ode_simulator-ode-string",
        lambda: sk.simulators.ode_simulator(dist.Normal(jnp.zeros(1), 1).to_event(1), "ode", None),
        Raises(TypeError, "`ode` must be"),
    ),
    (
        "SDE-diffusion-shape",
        lambda: sk.simulators.SDE(
            lambda t, y, th: y, lambda t, y, th: jnp.ones(1), jnp.ones(1), _TS
        ).solve(jax.random.key(0), jnp.ones(1)),
        Raises(ValueError, "diffusion returned shape (1,); expected (1, 1)"),
    ),
]
"""Rows moved here from tests/simulators/test_black_box.py and test_differential.py."""


@pytest.mark.parametrize("call, expect", _table(SIMULATOR_ENGINE_ROWS))
def test_black_box_and_differential_simulators_refuse_bad_input(call, expect):
    _run(call, expect)
