"""Export of posterior samples to ArviZ ``InferenceData`` for downstream analyses."""

from __future__ import annotations

import numpy as np
from jaxtyping import Array


def to_inference_data(samples: Array, prior=None, *, labels=None, num_chains: int = 1):
    """Wraps posterior samples as an ``arviz.InferenceData`` (group ``posterior``).

    With the prior of a numpyro model (:func:`sk.from_numpyro`), the flat θ is split back into
    the model's named sites with their shapes, so ArviZ summaries and plots use the model's own
    names. Otherwise θ becomes one variable ``theta`` with a ``theta_dim`` coordinate (named by
    ``labels`` when given).

    Args:
        samples: shape ``(num_samples, dim_theta)``.
        prior: optional prior; a ``ModelPrior`` gives named sites.
        labels: optional names of the θ components (without a model prior).
        num_chains: split the samples into this many "chains" (``num_samples`` must divide).

    Returns:
        ``arviz.InferenceData`` with dims ``(chain, draw, ...)``.

    Examples:
        >>> import numpy as np, sbi_kit as sk
        >>> idata = sk.to_inference_data(np.zeros((100, 2)), labels=["a", "b"])
        >>> idata.posterior["theta"].shape
        (1, 100, 2)
    """
    import arviz as az

    samples = np.asarray(samples)
    if samples.ndim != 2:
        raise ValueError(
            f"to_inference_data: samples must have shape (num_samples, dim_theta), got "
            f"{samples.shape}."
        )
    n, d = samples.shape
    if not isinstance(num_chains, int) or num_chains < 1 or n % num_chains:
        raise ValueError(
            f"to_inference_data: num_chains must be a positive integer dividing {n}, got "
            f"{num_chains!r}."
        )
    draws = samples.reshape(num_chains, n // num_chains, d)
    unflatten = getattr(prior, "unflatten", None)
    if unflatten is not None:
        sites = {k: np.asarray(v) for k, v in unflatten(draws).items()}
        return az.from_dict(posterior=sites)
    if labels is not None and len(labels) != d:
        raise ValueError(f"to_inference_data: {len(labels)} labels for dim_theta = {d}.")
    coords = {"theta_dim": list(labels) if labels is not None else list(range(d))}
    return az.from_dict(posterior={"theta": draws}, coords=coords, dims={"theta": ["theta_dim"]})
