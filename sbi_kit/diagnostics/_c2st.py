"""Classifier two-sample test (C2ST), computed as sbibm computes it."""

from __future__ import annotations

import warnings

import numpy as np
from jaxtyping import Array

from .._checks import check_positive_int


def c2st(
    samples: Array,
    reference: Array,
    *,
    seed: int = 1,
    num_folds: int = 5,
    z_score: bool = True,
) -> float:
    """Cross-validated accuracy of a classifier that tells ``samples`` from ``reference``.

    Follows sbibm (Lueckmann et al. 2021) so that numbers compare with the literature: both sets
    are z-scored with the reference's mean and standard deviation; scikit-learn's
    ``MLPClassifier(hidden_layer_sizes=(10·d, 10·d), activation="relu", solver="adam",
    max_iter=10000)``; ``KFold(num_folds, shuffle=True)``; mean accuracy. 0.5 means the two
    sets are indistinguishable, 1.0 that they are fully separated. Accuracy has that meaning
    only for sets of equal size (with 1,000 samples against 10,000 reference draws, always
    answering "reference" scores 0.909), so the larger set is subsampled to the smaller's size
    (without replacement, seeded by ``seed``) with a ``UserWarning`` that gives both sizes.

    Args:
        samples: shape ``(n, d)``.
        reference: shape ``(m, d)``.
        seed: ``random_state`` of the classifier and the folds (sbibm uses 1).
        num_folds: number of cross-validation folds.
        z_score: z-score with the reference's moments first.

    Returns:
        the mean accuracy over the folds (a float in [0, 1]).

    Raises:
        ValueError: unless both sets have shape ``(n, d)`` with one ``d``, at least
            ``num_folds`` rows each (fewer cannot be cross-validated) and only finite values.

    Examples:
        >>> import numpy as np, sbi_kit as sk
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.normal(size=(500, 2)), rng.normal(size=(500, 2)) + 3.0
        >>> sk.diagnostics.c2st(a, b) > 0.95
        True
    """
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neural_network import MLPClassifier

    fn = "c2st"
    num_folds = check_positive_int(num_folds, "num_folds", fn)
    if num_folds < 2:
        raise ValueError(f"{fn}: `num_folds` must be at least 2, got {num_folds}.")
    x = _sample_set(samples, "samples", fn, num_folds)
    y = _sample_set(reference, "reference", fn, num_folds)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{fn}: `samples` and `reference` must have the same number of columns d, got "
            f"shapes {x.shape} and {y.shape}."
        )
    if len(x) != len(y):
        n = min(len(x), len(y))
        warnings.warn(
            f"{fn}: `samples` has {len(x)} rows and `reference` {len(y)}; the larger set is "
            f"subsampled to {n} rows so that 0.5 stays the chance level.",
            UserWarning,
            stacklevel=2,
        )
        rng = np.random.default_rng(seed)
        x = x if len(x) == n else x[rng.choice(len(x), n, replace=False)]
        y = y if len(y) == n else y[rng.choice(len(y), n, replace=False)]
    if z_score:
        mean, std = y.mean(axis=0), y.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        x, y = (x - mean) / std, (y - mean) / std
    data = np.concatenate([x, y])
    target = np.concatenate([np.zeros(len(x)), np.ones(len(y))])
    d = x.shape[1]
    clf = MLPClassifier(
        activation="relu",
        hidden_layer_sizes=(10 * d, 10 * d),
        max_iter=10000,
        solver="adam",
        random_state=seed,
    )
    folds = KFold(n_splits=num_folds, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(clf, data, target, cv=folds, scoring="accuracy")))


def _sample_set(value, name: str, fn: str, num_folds: int) -> np.ndarray:
    """``value`` as a finite float32 array of shape ``(n, d)`` with ``n >= num_folds``."""
    try:
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{fn}: `{name}` must be a numeric array of shape (n, d) ({e}).") from None
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{fn}: `{name}` must have shape (n, d), got shape {arr.shape}.")
    if arr.shape[0] < num_folds:
        raise ValueError(
            f"{fn}: `{name}` has {arr.shape[0]} rows; {num_folds}-fold cross-validation needs "
            f"at least {num_folds} samples per set (a few hundred for a meaningful accuracy)."
        )
    bad = int((~np.isfinite(arr)).any(axis=1).sum())
    if bad:
        raise ValueError(
            f"{fn}: `{name}` holds {bad} rows with NaN or inf; c2st needs finite values."
        )
    return arr
