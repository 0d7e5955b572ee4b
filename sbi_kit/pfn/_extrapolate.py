"""Learning-curve extrapolation with a PFN (LC-PFN, Adriaensen et al., NeurIPS 2023).

A learning curve is a model's performance after each epoch, ``y_1 .. y_n`` in [0, 1]. An LC-PFN
is trained on curves of ``num_epochs`` epochs from a prior of parametric curve shapes, with
``x = t / num_epochs``; given the first ``n`` epochs it predicts the distribution of every later
epoch's value. That is what early stopping needs: the probability that a run's final value beats
the best seen so far, in a few milliseconds instead of an MCMC run.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from .._checks import as_float_array, check_finite
from ._bar import BarDistribution
from ._trained import TrainedPFN


@dataclasses.dataclass(frozen=True)
class Extrapolation:
    """Predictions for the future epochs of one learning curve.

    Attributes:
        epochs: ``(h,)`` the epochs predicted (``n + 1 .. horizon``).
        predictive: a :class:`~sbi_kit.pfn.BarDistribution` with batch shape ``(h,)``: each
            epoch's marginal predictive.
        mean: ``(h,)`` predictive means.
        levels: the quantile levels of :attr:`quantiles`.
        quantiles: ``(len(levels), h)`` predictive quantiles.
    """

    epochs: np.ndarray
    predictive: BarDistribution
    mean: np.ndarray
    levels: tuple[float, ...]
    quantiles: np.ndarray

    def probability_above(self, threshold: float, epoch: int | None = None) -> float:
        """P(y_epoch > threshold) under the predictive; ``epoch`` defaults to the last one
        predicted (the final value, for early stopping)."""
        if epoch is None:
            index = len(self.epochs) - 1
        else:
            matches = np.flatnonzero(self.epochs == epoch)
            if not matches.size:
                raise ValueError(
                    f"Extrapolation.probability_above: `epoch` must be one of the predicted "
                    f"epochs {int(self.epochs[0])}..{int(self.epochs[-1])}, got {epoch!r}."
                )
            index = int(matches[0])
        cdf = self.predictive.cdf(jnp.full(len(self.epochs), threshold, jnp.float32))
        return float(1.0 - cdf[index])


def extrapolate(
    pfn: TrainedPFN,
    curve,
    *,
    num_epochs: int | None = None,
    horizon: int | None = None,
    levels: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95),
) -> Extrapolation:
    """Predict the rest of a partial learning curve.

    Args:
        pfn: a PFN trained on learning curves, e.g. ``sk.PFN.pretrained("lc")``.
        curve: ``(n,)`` the values observed after epochs ``1 .. n`` (``n`` may be 0).
        num_epochs: the curve's total length ``m`` that epochs are divided by (``x = t / m``);
            default: the one the PFN was trained with (its metadata), else 100.
        horizon: the last epoch to predict (default ``num_epochs``).
        levels: quantile levels to report.

    Returns:
        An :class:`Extrapolation` for epochs ``n + 1 .. horizon``.

    Examples:
        >>> import numpy as np, sbi_kit as sk
        >>> lc = sk.PFN.pretrained("lc")
        >>> curve = 0.8 - 0.5 * np.arange(1, 21) ** -0.7      # 20 epochs of a rising curve
        >>> e = sk.pfn.extrapolate(lc, curve)
        >>> e.epochs[[0, -1]].tolist(), bool(e.mean[-1] > curve[-1] - 0.05)
        ([21, 100], True)
        >>> 0.0 <= e.probability_above(0.9) <= 1.0
        True
    """
    fn = "sk.pfn.extrapolate"
    if not isinstance(pfn, TrainedPFN):
        raise TypeError(f"{fn}: `pfn` must be a TrainedPFN, got {type(pfn).__name__}.")
    if pfn.input_dim != 1:
        raise ValueError(
            f"{fn}: `pfn` must take 1-d inputs (x = epoch / num_epochs), got input_dim "
            f"{pfn.input_dim}."
        )
    y = check_finite(as_float_array(curve, "curve", fn, 1), "curve", fn)
    m = num_epochs if num_epochs is not None else int(pfn.metadata.get("num_epochs", 100))
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ValueError(f"{fn}: `num_epochs` must be a positive integer, got {m!r}.")
    n = y.shape[0]
    h = m if horizon is None else horizon
    if isinstance(h, bool) or not isinstance(h, int) or not n < h <= m:
        raise ValueError(
            f"{fn}: `horizon` must be an integer in ({n}, {m}] (after the {n} observed epochs, "
            f"at most num_epochs), got {h!r}."
        )
    for q in levels:
        if not 0.0 < q < 1.0:
            raise ValueError(f"{fn}: `levels` must lie in (0, 1), got {levels!r}.")
    epochs = np.arange(n + 1, h + 1)
    x_context = (jnp.arange(1, n + 1, dtype=jnp.float32) / m)[:, None]
    predictive = pfn.predict(x_context, y, jnp.asarray(epochs / m, jnp.float32)[:, None])
    quantiles = np.stack(
        [np.asarray(predictive.icdf(jnp.full(len(epochs), q, jnp.float32))) for q in levels]
    )
    return Extrapolation(
        epochs=epochs,
        predictive=predictive,
        mean=np.asarray(predictive.mean),
        levels=tuple(float(q) for q in levels),
        quantiles=quantiles,
    )
