"""F-NPSE (Geffner, Papamakarios & Mnih 2023): a bridge of composed scores, annealed Langevin.

The composed score at diffusion time ``t`` is

    s(θ, t) = (1 − n) (T − t)/(T − t_min) · ∇ log p(θ) + Σ_j s_j(θ, t),

which is the score of ``p(θ | x_1..n)`` at ``t = t_min`` (Bayes: ``p(θ)^{1−n} Π_j p(θ | x_j)``)
and the sum of the noised single-observation scores at ``t = T``. Intermediate times are not
the marginals of any diffusion, so the bridge is sampled by annealed Langevin dynamics rather
than an ODE: particles start from the noise distribution narrowed by ``√n`` and, at each of
``num_levels`` times from ``T`` down to ``t_min``, take ``langevin_steps`` unadjusted Langevin
steps. It needs only the prior's score (any prior with a density in the networks'
coordinates), where GAUSS and JAC need a Gaussian prior; the paper recommends it for small n.

The step size is ``step_size`` times the particles' current variance (the smallest over
dimensions): the cloud of particles tracks the width of each level's distribution, so the
steps shrink as the bridge narrows without a hand-tuned schedule.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._checks import check_setting_fraction, check_setting_positive_int
from .._types import Key
from ._composition import (
    AbstractComposition,
    AbstractStandardizedPrior,
    ScoreFn,
    langevin_step,
)
from ._diffusion import AbstractSDE


class FNPSE(AbstractComposition):
    """F-NPSE: the bridge score of Geffner et al. (2023), sampled by annealed Langevin dynamics.

    Any prior with a density works (the prior's score enters, not its diffused score). The
    cost is ``num_levels × langevin_steps`` evaluations of the n scores per particle.

    Args:
        num_levels: diffusion times from ``T`` to ``t_min`` (equally spaced).
        langevin_steps: unadjusted Langevin steps at each level.
        step_size: step as a fraction of the particles' current variance (smallest
            dimension), in (0, 1); the stationary variance of a Gaussian is inflated by about
            ``step_size / 2``.

    Examples:
        >>> import jax, jax.numpy as jnp, sbi_kit as sk
        >>> from sbi_kit.inference import FNPSE, VPSDE, GaussianPrior
        >>> sde, x = VPSDE(), jnp.array([[0.5], [0.7], [0.6]])      # three observations
        >>> def score(y, t, c):   # exact noised score of the posterior N(0.8 c, 0.2)
        ...     m, s = sde.mean_coeff(t), sde.std(t)
        ...     return -(y - m * 0.8 * c) / (m**2 * 0.2 + s**2)
        >>> prior = GaussianPrior(jnp.zeros(1), jnp.eye(1))
        >>> draws, info = FNPSE().sample(jax.random.key(0), score, x, prior, sde, 2000)
        >>> # exact: precision 1 + 3 / 0.25 = 13, mean (1.8 / 0.25) / 13 = 0.554, sd 0.277
        >>> mean, sd = float(draws.mean()), float(draws.std())
        >>> draws.shape, abs(mean - 0.554) < 0.03, abs(sd - 0.277) < 0.03
        ((2000, 1), True, True)
    """

    num_levels: int = 100
    langevin_steps: int = 5
    step_size: float = 0.1

    def __check_init__(self):
        check_setting_positive_int("FNPSE", "num_levels", self.num_levels)
        check_setting_positive_int("FNPSE", "langevin_steps", self.langevin_steps)
        check_setting_fraction("FNPSE", "step_size", self.step_size, low_open=True)

    def sample(
        self,
        key: Key,
        score: ScoreFn,
        contexts: Array,
        prior: AbstractStandardizedPrior,
        sde: AbstractSDE,
        num_samples: int,
    ) -> tuple[Array, dict[str, Array]]:
        n = jax.tree_util.tree_leaves(contexts)[0].shape[0]
        t_max, t_min = float(sde.t_max), float(sde.t_min)
        dim = prior.dim
        key_init, key_run = jax.random.split(key)
        t_top = jnp.asarray(t_max)
        scale = jnp.sqrt(sde.mean_coeff(t_top) ** 2 + sde.std(t_top) ** 2) / jnp.sqrt(n)
        y0 = scale * jax.random.normal(key_init, (num_samples, dim))

        def composed(y, t):
            weight = (1 - n) * (t_max - t) / (t_max - t_min)
            scores = jax.vmap(score, in_axes=(None, None, 0))(y, t, contexts)
            return weight * prior.score(y) + jnp.sum(scores, axis=0)

        def level(ys, args):
            t, key_level = args

            def langevin(ys, key_step):
                return langevin_step(key_step, ys, lambda y: composed(y, t), self.step_size)

            ys, eps = jax.lax.scan(langevin, ys, jax.random.split(key_level, self.langevin_steps))
            return ys, eps[-1]

        ts = jnp.linspace(t_max, t_min, self.num_levels)
        ys, steps = jax.lax.scan(level, y0, (ts, jax.random.split(key_run, self.num_levels)))
        finite = jnp.all(jnp.isfinite(ys))
        return ys, {"final_step": steps[-1], "non_finite": (~finite).astype(ys.dtype)}
