"""Cold start (issue 17, item 5): one compiled sampler for every width, and the draws behind it.

The one-layer sampler of `rgflow.measure` draws a network's neurons a few at a time, straight
from their positions in the network's random stream, with the width a runtime value. These tests
check the stream arithmetic against `jax.random` itself, the networks against the plain reference
sampler (`net.sample`), and that a sweep over ten widths compiles one block program.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rgflow
import rgflow._ensemble as ens
from rgflow._nets import fold_in_data, network_outputs, standard_normals, stream_normals

WIDTHS = (2, 3, 4, 5, 10, 20, 50, 100, 500, 1000)


def test_stream_normals_are_jax_random_normal(key):
    # float64: bit for bit jax.random.normal of the same key (JAX's own hash and transform),
    # any stretch of the stream, streams on either axis
    keys = jax.random.split(key, 7)
    ref = np.asarray(jax.jit(jax.vmap(lambda k: jax.random.normal(k, (64,), jnp.float64)))(keys))
    np.testing.assert_array_equal(jax.jit(jax.vmap(lambda k: standard_normals(k, 64)))(keys), ref)
    data = jax.vmap(jax.random.key_data)(keys)
    np.testing.assert_array_equal(stream_normals(data, 10, 30), ref[:, 10:40])
    np.testing.assert_array_equal(stream_normals(data.T, 33, 31, axis=0), ref[:, 33:64].T)


def test_stream_normals_float32_two_per_word(key):
    # float32: the low then the high 32 bits of each 64-bit word of jax.random.bits, through
    # jax.random.normal's float32 transform (uniform from 23 mantissa bits, √2 erf⁻¹)
    bits = np.asarray(jax.random.bits(key, (20,), jnp.uint64))
    words = np.stack([bits & 0xFFFFFFFF, bits >> 32], axis=-1).reshape(-1).astype(np.uint32)
    low = np.nextafter(np.float32(-1), np.float32(0))
    unit = ((words >> 9) | np.uint32(0x3F800000)).view(np.float32) - np.float32(1)
    u = np.maximum(low, unit * (np.float32(1) - low) + low)
    ref = np.float32(np.sqrt(2)) * jax.lax.erf_inv(jnp.asarray(u))
    np.testing.assert_array_equal(standard_normals(key, 40, jnp.float32), ref)
    np.testing.assert_array_equal(standard_normals(key, 39, jnp.float32), ref[:39])
    data = jax.random.key_data(key)
    np.testing.assert_array_equal(stream_normals(data, 12, 16, jnp.float32), ref[12:28])
    with pytest.raises(ValueError, match="even"):
        stream_normals(data, 0, 3, jnp.float32)


def test_fold_in_data_is_jax_fold_in(key):
    index = jnp.asarray([0, 1, 7, 2**31, 2**32 - 1], dtype=jnp.uint32)
    ref = jax.vmap(lambda g: jax.random.key_data(jax.random.fold_in(key, g)))(index)
    np.testing.assert_array_equal(fold_in_data(jax.random.key_data(key), index), ref)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_runtime_width_sampler_draws_the_reference_networks(dtype, key):
    # widths around the neuron chunk (8), traced width, other chunk sizes: the networks of the
    # reference sampler (draws at fixed stream positions, so chunking and padding change nothing)
    net = rgflow.GaussNet(width=1, d_in=3, sigma_b=0.3, sigma_w=1.3)
    xs = jnp.asarray(rgflow.hms_inputs("gauss", 3))
    index = jnp.arange(5, 45, dtype=jnp.uint32)
    sampler = jax.jit(lambda w, chunk: ens._sample_one_layer(net, xs, key, index, dtype, w,
                                                             chunk=chunk), static_argnums=1)
    tol = dict(rtol=1e-12, atol=1e-13) if dtype == "float64" else dict(rtol=2e-5, atol=2e-5)
    for width in (1, 7, 8, 9, 17, 100):
        ref_net = rgflow.GaussNet(width=width, d_in=3, sigma_b=0.3, sigma_w=1.3)
        ref = jax.jit(lambda x, n=ref_net: network_outputs(n, x, key, index))(xs.astype(dtype))
        for chunk in (2, 8):
            np.testing.assert_allclose(sampler(jnp.int32(width), chunk), ref, **tol)


def test_width_sweep_compiles_one_block_program(key):
    # the ten HMS widths share one compiled block program (the width is a runtime value); the
    # old sampler compiled one per width. Counted with jax.monitoring's compile events.
    from jax import monitoring

    ens._round_fn.cache_clear()
    programs = []

    def listener(event, duration, **kw):
        # lowerings (one per program compiled or fetched from a persistent cache)
        if event == "/jax/core/compile/jaxpr_to_mlir_module_duration":
            programs.append(str(kw.get("fun_name")))

    monitoring.register_event_duration_secs_listener(listener)
    try:
        xs = rgflow.hms_inputs("erf", 1)
        res = rgflow.measure_widths(rgflow.ErfNet(width=1, sigma_b=0.7), xs, 96, WIDTHS,
                                    key=jax.random.fold_in(key, 3), n_blocks=4)
        for m in res.values():
            m.moment(6).block_until_ready()
    finally:
        monitoring.unregister_event_duration_listener(listener)
    assert sum("per_device" in p for p in programs) == 1, programs
    assert ens._round_fn.cache_info().currsize == 1
    assert len(programs) <= 12, programs  # the block program and a few tiny transfers
    # and each width is the ensemble `measure` draws at that width alone
    single = rgflow.measure(rgflow.ErfNet(width=50, sigma_b=0.7), xs, 96,
                            key=jax.random.fold_in(jax.random.fold_in(key, 3), 50), n_blocks=4)
    np.testing.assert_array_equal(res[50].moment(4), single.moment(4))


def test_measure_rejects_non_threefry_keys():
    net = rgflow.ErfNet(width=2)
    with pytest.raises(TypeError, match="key"):
        rgflow.measure(net, rgflow.hms_inputs("erf", 1), 10, key=jax.random.key(0, impl="rbg"),
                       n_blocks=2)
