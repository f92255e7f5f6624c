"""The persistent XLA compilation cache of the commands (rgflow._xla_cache)."""

import os
import subprocess
import sys
import textwrap

import pytest

from rgflow._xla_cache import _trim, compilation_cache_dir, enable_compilation_cache


def test_folder_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RGFLOW_XLA_CACHE", str(tmp_path / "x"))
    assert compilation_cache_dir() == tmp_path / "x"
    for off in ("0", "off", "No", "false"):
        monkeypatch.setenv("RGFLOW_XLA_CACHE", off)
        assert compilation_cache_dir() is None
        assert enable_compilation_cache() is None
    monkeypatch.delenv("RGFLOW_XLA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compilation_cache_dir() == tmp_path / "xdg" / "rgflow" / "xla"


def test_unusable_folder_leaves_the_cache_off(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert enable_compilation_cache(blocker / "xla") is None


def test_trim_drops_the_oldest_entries(tmp_path):
    for i in range(5):
        f = tmp_path / f"e{i}-cache"
        f.write_bytes(b"x" * 100)
        os.utime(f, (1000 + i, 1000 + i))
    _trim(tmp_path, 250)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e3-cache", "e4-cache"]


_PROGRAM = textwrap.dedent("""
    import sys, jax, jax.numpy as jnp
    from jax import monitoring
    hits = []
    monitoring.register_event_listener(
        lambda event, **kw: hits.append(event) if event.endswith("cache_hits") else None)
    from rgflow import enable_compilation_cache
    assert enable_compilation_cache(sys.argv[1]) is not None
    print(float(jax.jit(lambda x: jnp.sin(x) * 3.0)(jnp.arange(7.0)).sum()), len(hits))
""")


@pytest.mark.slow
def test_a_second_process_reads_the_programs_of_the_first(tmp_path):
    """The cache is what makes worker processes share compilations: a program compiled in one
    process is loaded, not compiled, in the next, and gives the same numbers."""
    env = {k: v for k, v in os.environ.items() if k != "RGFLOW_XLA_CACHE"}
    cache = tmp_path / "xla"
    runs = [subprocess.run([sys.executable, "-c", _PROGRAM, str(cache)], env=env, text=True,
                           capture_output=True, timeout=120) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    (v1, h1), (v2, h2) = (r.stdout.split() for r in runs)
    assert v1 == v2
    assert int(h1) == 0 and int(h2) >= 1
    assert any(p.name.endswith("-cache") for p in cache.iterdir())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
