"""Classifier two-sample test (C2ST), computed as sbibm computes it."""

from __future__ import annotations

import numpy as np
from jaxtyping import Array


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
    sets are indistinguishable, 1.0 that they are fully separated.

    Args:
        samples: shape ``(n, d)``.
        reference: shape ``(m, d)``.
        seed: ``random_state`` of the classifier and the folds (sbibm uses 1).
        num_folds: number of cross-validation folds.
        z_score: z-score with the reference's moments first.

    Returns:
        the mean accuracy over the folds (a float in [0, 1]).

    Examples:
        >>> import numpy as np, sbi_kit as sk
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.normal(size=(500, 2)), rng.normal(size=(500, 2)) + 3.0
        >>> sk.diagnostics.c2st(a, b) > 0.95
        True
    """
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neural_network import MLPClassifier

    x = np.asarray(samples, dtype=np.float32)
    y = np.asarray(reference, dtype=np.float32)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"c2st: expected samples (n, d) and reference (m, d) with the same d, got "
            f"{x.shape} and {y.shape}."
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("c2st: samples and reference must be finite (found NaN or inf).")
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
