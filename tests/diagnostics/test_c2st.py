"""C2ST: chance level 0.5 also for sets of unequal size."""

import numpy as np
import pytest

import sbi_kit as sk


def test_c2st_of_one_distribution_at_unequal_sizes_is_near_one_half():
    """200 samples against 2,000 reference draws of the same Gaussian: without subsampling a
    classifier that always answers "reference" scores 2000 / 2200 = 0.909."""
    rng = np.random.default_rng(0)
    samples, reference = rng.normal(size=(200, 2)), rng.normal(size=(2000, 2))
    with pytest.warns(UserWarning, match="subsampled to 200 rows"):
        score = sk.diagnostics.c2st(samples, reference)
    assert 0.4 < score < 0.6, score
