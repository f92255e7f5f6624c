import os

import jax
import pytest

# the commands switch on a persistent XLA cache in the user's cache folder; tests that call
# them in-process stay hermetic (tests/test_xla_cache.py exercises the cache itself)
os.environ.setdefault("RGFLOW_XLA_CACHE", "off")

jax.config.update("jax_enable_x64", True)

import rgflow  # noqa: E402,F401

NETS = {"erf": rgflow.ErfNet, "relu": rgflow.ReLUNet, "gauss": rgflow.GaussNet}


@pytest.fixture(scope="session")
def key():
    return jax.random.key(20201217)


def zscores(estimate, reference, stderr):
    """(estimate − reference)/stderr, as a NumPy array."""
    import numpy as np

    return (np.asarray(estimate) - np.asarray(reference)) / np.asarray(stderr)
