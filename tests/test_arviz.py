import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import sbi_kit as sk


def _model(x=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
    s = numpyro.sample("s", dist.HalfNormal(1.0))
    numpyro.sample("x", dist.Normal(mu, s).to_event(1), obs=x)


def test_numpyro_sites_come_back_by_name():
    sim = sk.from_numpyro(_model, observed="x")
    samples = np.arange(600, dtype=np.float32).reshape(200, 3)
    idata = sk.to_inference_data(samples, sim.prior, num_chains=2)
    assert idata.posterior["mu"].shape == (2, 100, 2)
    assert idata.posterior["s"].shape == (2, 100)
    np.testing.assert_array_equal(idata.posterior["s"].values.ravel(), samples[:, 2])
    np.testing.assert_array_equal(idata.posterior["mu"].values.reshape(200, 2), samples[:, :2])


def test_plain_samples_and_bad_input():
    idata = sk.to_inference_data(np.ones((50, 2)), labels=["a", "b"])
    assert idata.posterior["theta"].shape == (1, 50, 2)
    assert float(idata.posterior["theta"].sel(theta_dim="b").mean()) == 1.0
    with pytest.raises(ValueError, match=r"shape \(num_samples, dim_theta\)"):
        sk.to_inference_data(np.ones(5))
    with pytest.raises(ValueError, match="dividing 50"):
        sk.to_inference_data(np.ones((50, 2)), num_chains=3)
