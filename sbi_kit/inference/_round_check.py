"""How unlike a round's simulations ``x_o`` is: a free predictive check of sequential rounds.

Every round after the first simulates at parameters drawn from (or around) the previous
round's posterior of ``x_o``, so its simulations are draws from that posterior's predictive
distribution, and ``x_o`` should look like one of them. When the posterior sits in the wrong
place (a learned likelihood that extrapolates wrongly far from its training data, say), the
round's simulations land far from ``x_o`` and nothing in the training loss shows it. This
module measures it without a single extra simulation: z-score the round's simulations by
their own mean and standard deviation per component, and compare ``x_o``'s largest
``|z|`` with the largest ``|z|`` of any of the simulations.
"""

from __future__ import annotations

import numpy as np

from .._checks import as_float_array, check_finite

EXTREMITY_LIMIT = 2.0
""":func:`sequential` warns when ``x_o``'s extremity in the last round exceeds this: ``x_o``
lies more than twice as far out, in the units of the round's spread, as the most extreme of
the round's own simulations. SNLE on lotka_volterra (1,000 simulations in 10 rounds) gave 3.2,
4.9 and 9.5 in the last three rounds of observation 4, whose posterior failed (C2ST 1.000);
the healthy runs measured ended below 0.4 (some after large values in early rounds that later
rounds corrected, which is why only the last round warns); see docs/sequential.md."""


_ANY_RANK = tuple(range(33))


def x_o_extremity(x: np.ndarray, x_o: np.ndarray) -> float:
    """How far out ``x_o`` lies among simulations ``x``: its largest ``|z|`` over theirs.

    Each component is z-scored by the simulations' own mean and standard deviation;
    components that take one value in every simulation are left out. Below 1, ``x_o`` is
    inside the simulations' range in every component; well above 1, it is unlike all of them.
    Given simulations from a posterior's predictive distribution it is a predictive check (a
    sequential round's simulations give it without any extra simulation; otherwise
    ``sk.simulate(key, simulator, n, theta=posterior.sample(...))``); given simulations from
    the prior, a prior predictive check.
    :func:`~sbi_kit.sequential` records it for every round (``x_o_extremity``) and warns
    above 2 in the last one.

    Args:
        x: simulated observations, ``(n, *x_shape)``, finite.
        x_o: the observation ``x_shape``, or a stack ``(n_obs, *x_shape)`` (the largest over
            the stack).

    Returns:
        the ratio, a Python float; NaN when fewer than two simulations or no varying
        component leave nothing to compare with.

    Raises:
        ValueError: for ``x`` with fewer than 2 dimensions or non-finite values, and for an
            ``x_o`` whose shape is neither ``x_shape`` nor ``(n_obs, *x_shape)``, that holds
            no observation (``n_obs = 0``) or that is not finite.

    Examples:
        >>> import numpy as np, sbi_kit as sk
        >>> x = np.array([[0.0], [1.0], [2.0], [3.0]])  # z-scored, the ends lie 1.34 sd out
        >>> sk.inference.x_o_extremity(x, np.array([1.5]))
        0.0
        >>> round(sk.inference.x_o_extremity(x, np.array([30.0])), 1)
        19.0
    """
    fn = "sk.inference.x_o_extremity"
    sims = np.asarray(as_float_array(x, "x", fn, _ANY_RANK))
    if sims.ndim < 2:
        raise ValueError(
            f"{fn}: `x` must have shape (num_simulations, *x_shape), got shape {sims.shape}."
        )
    check_finite(sims, "x", fn)
    x_shape = tuple(sims.shape[1:])
    obs = as_float_array(x_o, "x_o", fn, _ANY_RANK)
    if tuple(obs.shape) != x_shape and tuple(obs.shape[1:]) != x_shape:
        raise ValueError(
            f"{fn}: `x_o` must have shape {x_shape} (one observation) or (n_obs, "
            f"{', '.join(map(str, x_shape))}) like the simulations in `x`, got {obs.shape}."
        )
    if obs.size == 0:
        raise ValueError(f"{fn}: `x_o` holds no observation (shape {obs.shape}).")
    check_finite(obs, "x_o", fn)
    return extremity_of_round(sims, np.asarray(obs))


def extremity_of_round(x: np.ndarray, x_o: np.ndarray) -> float:
    """:func:`x_o_extremity` on arrays already checked (:func:`~sbi_kit.sequential`'s rounds)."""
    x = np.asarray(x, np.float64).reshape(x.shape[0], -1)
    stack = np.asarray(x_o, np.float64).reshape(-1, x.shape[1])
    if x.shape[0] < 2:
        return float("nan")
    loc, scale = x.mean(axis=0), x.std(axis=0)
    varying = scale > 0
    if not varying.any():
        return float("nan")
    z_sims = np.abs((x[:, varying] - loc[varying]) / scale[varying]).max()
    z_o = np.abs((stack[:, varying] - loc[varying]) / scale[varying]).max()
    return float(z_o / z_sims)
