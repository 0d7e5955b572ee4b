"""A learned likelihood q(x | θ) as a numpyro distribution, for use inside numpyro models."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array
from numpyro.distributions import constraints

if TYPE_CHECKING:
    from ._nle import NLEPosterior


class LearnedLikelihood(dist.Distribution):
    """q(x | θ) of a trained NLE posterior, for a batch of θ.

    Batch shape ``theta.shape[:-1]``, event shape ``x_shape``. ``log_prob`` is the normalised
    density of the (ensemble mixture of) flows in the units of x (the z-scoring's Jacobian
    included); ``sample`` draws simulated observations from it. Made by
    :meth:`NLEPosterior.likelihood`; see :class:`~sbi_kit.NLE` for an example, and
    the NLE guide (docs/nle.md) and the hierarchical-model tutorial for its use inside a
    numpyro model.
    """

    arg_constraints = {}
    pytree_data_fields = ("posterior", "theta")

    def __init__(self, posterior: NLEPosterior, theta: Array):
        theta = jnp.asarray(theta)
        if theta.ndim < 1 or theta.shape[-1] != posterior.dim_theta:
            raise ValueError(
                f"likelihood: `theta` must have shape (..., {posterior.dim_theta}), got "
                f"{theta.shape}."
            )
        self.posterior = posterior
        self.theta = theta
        super().__init__(batch_shape=theta.shape[:-1], event_shape=posterior.x_shape)

    @property
    def support(self):
        return constraints.independent(constraints.real, len(self.event_shape))

    def _log_prob_one(self, theta: Array, x: Array) -> Array:
        post = self.posterior
        z_std = self.posterior._theta_std(theta)
        x_std = post.x_standardizer(x)
        lp = eqx.filter_vmap(lambda net: net.log_prob(x_std, z_std))(post.net)
        return jax.nn.logsumexp(lp) - math.log(lp.shape[0]) - post.x_standardizer.log_scale()

    def log_prob(self, value):
        shape = jnp.broadcast_shapes(
            jnp.shape(value)[: jnp.ndim(value) - len(self.event_shape)], self.batch_shape
        )
        theta = jnp.broadcast_to(self.theta, (*shape, self.theta.shape[-1]))
        x = jnp.broadcast_to(value, (*shape, *self.event_shape))
        flat = jax.vmap(self._log_prob_one)(
            theta.reshape(-1, theta.shape[-1]), x.reshape(-1, *self.event_shape)
        )
        return flat.reshape(shape)

    def sample(self, key, sample_shape=()):
        post = self.posterior
        shape = tuple(sample_shape) + self.batch_shape
        theta = jnp.broadcast_to(self.theta, (*shape, self.theta.shape[-1])).reshape(
            -1, self.theta.shape[-1]
        )
        n, k = theta.shape[0], post.ensemble_size
        key_member, key_draw = jax.random.split(key)
        members = jax.random.randint(key_member, (n,), 0, k)

        def one(key, th, member):
            net = jax.tree_util.tree_map(
                lambda leaf: leaf[member] if eqx.is_array(leaf) else leaf, post.net
            )
            x_std = net.sample(key, self.posterior._theta_std(th), 1)[0]
            return post.x_standardizer.inverse(x_std)

        draws = jax.vmap(one)(jax.random.split(key_draw, n), theta, members)
        return draws.reshape(*shape, *self.event_shape)
