"""The `rgflow` command line (typer): Monte Carlo and exact correlators to `.npz` + JSON
sidecars, and `reproduce`, the whole figure pipeline."""

from __future__ import annotations

import datetime
import platform
import sys
from pathlib import Path

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__,
                  pretty_exceptions_enable=False)

# Exit codes: 0 success, 1 runtime or I/O failure, 2 bad input (options, inputs, configuration).
EXIT_FAILURE, EXIT_USAGE = 1, 2


def _fail(message: str, code: int = EXIT_USAGE):
    """Print one line `Error: ...` to stderr and exit with `code` (never a traceback)."""
    typer.echo(f"Error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(code)


def _clean_errors(command):
    """Run a command so that every failure is a one-line error with a non-zero exit code:
    bad input (ValueError, TypeError, typer.BadParameter) exits 2, I/O and runtime failures
    exit 1. Set RGFLOW_DEBUG=1 to see the traceback instead."""
    import functools
    import os

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001
            if os.environ.get("RGFLOW_DEBUG"):
                raise
            if isinstance(e, typer.BadParameter):
                _fail(e.message, EXIT_USAGE)
            if isinstance(e, (ValueError, TypeError)):
                _fail(str(e), EXIT_USAGE)
            if isinstance(e, OSError):
                _fail(str(e), EXIT_FAILURE)
            _fail(f"{type(e).__name__}: {e}", EXIT_FAILURE)

    return run


def _check_outputs(out: Path, *others: Path | None) -> Path:
    """Refuse, before any computation, an `--out` that cannot hold the data and its sidecar:
    a directory, an unwritable place, a name ending in `.json` (the sidecar `OUT.json` would
    overwrite the data), or one equal to another path of the run (e.g. `--checkpoint`)."""
    from .._io import check_writable

    out = Path(out)
    if out.suffix == ".json":
        _fail(f"--out {out} ends in .json: the JSON sidecar is written to {out.with_suffix('.json')} "
              "and would overwrite the data; use a .npz name such as "
              f"{out.with_suffix('.npz')}")
    sidecar = out.with_suffix(".json")
    for path in (out, sidecar):
        try:
            check_writable(path)
        except OSError as e:
            _fail(f"--out: {e}", EXIT_FAILURE)
    for other in others:
        if other is not None and Path(other).resolve() in (out.resolve(), sidecar.resolve()):
            _fail(f"--checkpoint {other} is the output file or its sidecar; use another path")
    return out


def _write_results(out: Path, arrays: dict, sidecar: dict) -> None:
    """Write the `.npz` and its sidecar, refusing non-finite results (nothing is written)."""
    import numpy as np

    from .._io import save_json, save_npz

    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    bad = sorted(k for k, v in arrays.items() if not np.all(np.isfinite(v)))
    if bad:
        _fail(f"the results {', '.join(bad)} contain NaN or inf (overflow); nothing was written",
              EXIT_FAILURE)
    try:
        save_npz(out, **arrays)
        save_json(out.with_suffix(".json"), sidecar)
    except OSError as e:
        _fail(f"could not write {out}: {e.strerror or e}", EXIT_FAILURE)
    typer.echo(f"wrote {out} and {out.with_suffix('.json')}")


def _versions() -> dict:
    import equinox
    import jax
    import numpy

    from .._version import __version__

    return {"rgflow": __version__, "jax": jax.__version__, "equinox": equinox.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}


def _parse_inputs(inputs: str, net: str, d_in: int):
    import numpy as np

    from .._nets import hms_inputs

    if inputs == "hms":
        return hms_inputs(net if net in ("erf", "relu", "gauss") else "erf", d_in)
    try:
        pts = [[float(c) for c in p.split(",")] for p in inputs.split(";") if p.strip()]
        return np.asarray(pts, dtype=float)
    except ValueError as e:
        raise typer.BadParameter(
            "`--inputs` must be 'hms' or points like '0.1,0.2;0.3,0.4' (';' between points, ',' "
            "between coordinates)"
        ) from e


def _parse_orders(orders: str) -> tuple[int, ...]:
    try:
        return tuple(int(o) for o in orders.split(","))
    except ValueError as e:
        raise typer.BadParameter("`--orders` must be comma-separated integers, e.g. 2,4,6") from e


def _build(net: str, width: int, d_in: int, sigma_w: float, sigma_b: float | None):
    from .._nets import make_net

    kw = dict(width=width, d_in=d_in, sigma_w=sigma_w)
    if sigma_b is not None:
        kw["sigma_b"] = sigma_b
    try:
        return make_net(net, **kw)
    except (ValueError, TypeError) as e:
        raise typer.BadParameter(str(e)) from e


def _sidecar(command: str, model, xs, extra: dict) -> dict:
    return {
        "command": command,
        "argv": sys.argv,
        "config": {"net": model.name, "activation": getattr(model, "activation_name", model.name),
                   "width": model.width, "d_in": model.d_in, "sigma_w": model.sigma_w,
                   "sigma_b": model.sigma_b, "inputs": xs.tolist()},
        **extra,
        "versions": _versions(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }


NetOpt = typer.Option("erf", help="erf | relu | gauss | any activation name (tanh, gelu, ...)")
WidthOpt = typer.Option(..., min=1, help="hidden width N")
DinOpt = typer.Option(1, "--d-in", min=1, help="input dimension")
SwOpt = typer.Option(1.0, "--sigma-w", min=0.0, help="σ_W")
SbOpt = typer.Option(None, "--sigma-b", min=0.0, help="σ_b (default 1, or 0 for ReLU)")
InputsOpt = typer.Option("hms", help="'hms' (physics.md §5 set) or '0.1;0.5;...' points")
OrdersOpt = typer.Option("2,4,6", help="comma-separated even orders from 2,4,6")



def _join_if_child(distributed: bool) -> bool:
    """Join the jax.distributed run (before any JAX computation) when this is one of its processes."""
    import os

    child = distributed or "RGFLOW_PROCESS_ID" in os.environ
    if child:
        from .._distributed import initialize_distributed
        from ._launch import watch_launcher

        watch_launcher()
        initialize_distributed()
    return child

@app.command()
@_clean_errors
def measure(
    out: Path = typer.Option(..., help="output .npz file (a .json sidecar is written beside it)"),
    net: str = NetOpt,
    width: int = WidthOpt,
    d_in: int = DinOpt,
    sigma_w: float = SwOpt,
    sigma_b: float = SbOpt,
    inputs: str = InputsOpt,
    orders: str = OrdersOpt,
    n_nets: int = typer.Option(100_000, "--n-nets", min=2, help="ensemble size"),
    n_blocks: int = typer.Option(32, "--n-blocks", min=2, help="jackknife blocks"),
    seed: int = typer.Option(0, help="seed of jax.random.key (0 <= seed < 2**63)"),
    checkpoint: Path = typer.Option(None, help="checkpoint file: resume an interrupted run "
                                    "(one file per process with --processes)"),
    progress: bool = typer.Option(True, help="progress bar"),
    processes: int = typer.Option(1, "--processes", help="run as K local processes of one "
                                  "jax.distributed run (same numbers as one process)"),
    oversubscribe: bool = typer.Option(False, "--oversubscribe",
                                       help="allow --processes above the CPU cores"),
    distributed: bool = typer.Option(False, "--distributed", help="join a run started by srun "
                                     "or mpirun (jax.distributed cluster discovery)"),
):
    """Monte Carlo moments and connected correlators with error bars."""

    from .._validate import check_seed

    child = _join_if_child(distributed)
    out = _check_outputs(out, checkpoint)
    seed = check_seed(seed, "--seed")
    model = _build(net, width, d_in, sigma_w, sigma_b)
    xs = _parse_inputs(inputs, net, d_in)
    order_list = _parse_orders(orders)
    if not child:
        from ._launch import check_processes, launch, python_argv

        processes = check_processes(processes, oversubscribe)
        if processes > 1:  # this process only launches and waits (no JAX)
            args = ["measure", "--out", str(out), "--net", net, "--width", str(width), "--d-in",
                    str(d_in), "--sigma-w", repr(sigma_w), "--inputs", inputs, "--orders", orders,
                    "--n-nets", str(n_nets), "--n-blocks", str(n_blocks), "--seed", str(seed),
                    "--progress" if progress else "--no-progress", "--processes", str(processes)]
            if sigma_b is not None:
                args += ["--sigma-b", repr(sigma_b)]
            if checkpoint is not None:
                args += ["--checkpoint", str(checkpoint)]
            launch(python_argv("rgflow.app.cli", args), processes)
            return
    import jax

    from .._ensemble import measure as run_measure

    main_process = jax.process_index() == 0
    m = run_measure(model, xs, n_nets, key=jax.random.key(seed), orders=order_list,
                    n_blocks=n_blocks, progress=progress and main_process, checkpoint=checkpoint)
    if not main_process:  # only process 0 writes the outputs
        return
    arrays = {"xs": m.xs}
    for n in m.orders:
        arrays[f"moment_{n}"] = m.moment(n)
        arrays[f"moment_stderr_{n}"] = m.moment_stderr(n)
        arrays[f"connected_{n}"] = m.connected(n)
        arrays[f"connected_stderr_{n}"] = m.connected_stderr(n)
    _write_results(out, arrays, _sidecar(
        "measure", model, m.xs,
        {"seed": seed, "n_nets": n_nets, "n_blocks": n_blocks, "orders": list(m.orders),
         "processes": jax.process_count(), "arrays": sorted(arrays)}))


@app.command()
@_clean_errors
def exact(
    out: Path = typer.Option(..., help="output .npz file (a .json sidecar is written beside it)"),
    net: str = NetOpt,
    width: int = WidthOpt,
    d_in: int = DinOpt,
    sigma_w: float = SwOpt,
    sigma_b: float = SbOpt,
    inputs: str = InputsOpt,
    orders: str = OrdersOpt,
):
    """Exact finite-width moments, connected correlators and GP (Wick) correlators."""
    import numpy as np

    from .._exact import exact_connected, exact_moment, gp_correlator

    out = _check_outputs(out)
    model = _build(net, width, d_in, sigma_w, sigma_b)
    xs = _parse_inputs(inputs, net, d_in)
    arrays = {"xs": xs}
    for n in _parse_orders(orders):
        arrays[f"moment_{n}"] = exact_moment(model, xs, n)
        arrays[f"connected_{n}"] = exact_connected(model, xs, n)
        arrays[f"gp_{n}"] = gp_correlator(model, xs, n)
    _write_results(out, arrays, _sidecar("exact", model, np.asarray(xs),
                                         {"arrays": sorted(arrays)}))


@app.command()
@_clean_errors
def reproduce(
    out: Path = typer.Option(None, help="output folder for figures and their JSON (default: "
                             "figures/ for --quick, figures/full/ for --full)"),
    quick: bool = typer.Option(False, "--quick", help="embedded quick profile (default)"),
    full: bool = typer.Option(False, "--full", help="the paper's 10⁶ networks per width"),
    config: Path = typer.Option(None, help="TOML file overriding the profile's settings"),
    force: bool = typer.Option(False, help="ignore cached stage results"),
    jobs: int = typer.Option(None, min=0, help="worker processes (default: CPU cores, at most "
                             "2); 0 runs every stage in this process"),
    processes: int = typer.Option(1, "--processes", help="run as K local processes of one "
                                  "jax.distributed run sharing each stage's Monte Carlo "
                                  "(same numbers as one process; needs --jobs 0 or none)"),
    oversubscribe: bool = typer.Option(False, "--oversubscribe",
                                       help="allow --processes above the CPU cores"),
    distributed: bool = typer.Option(False, "--distributed", help="join a run started by srun "
                                     "or mpirun (jax.distributed cluster discovery)"),
):
    """Reproduce every figure from one configuration (cached, resumable)."""

    from .reproduce import load_config
    from .reproduce import reproduce as run_reproduce

    child = _join_if_child(distributed)
    if quick and full:
        raise typer.BadParameter("choose one of --quick and --full")
    try:
        cfg = load_config(config, "full" if full else "quick")
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    if out is None:
        out = Path("figures/full") if full else Path("figures")
    if not child:
        from ._launch import check_processes, launch, python_argv

        processes = check_processes(processes, oversubscribe)
        if processes > 1:  # this process only launches and waits (no JAX)
            if jobs not in (None, 0):
                raise ValueError(
                    f"--jobs {jobs} cannot be combined with --processes {processes}: the "
                    "processes share every stage's Monte Carlo and run the stages one after "
                    "the other (leave --jobs out or pass --jobs 0)")
            args = ["reproduce", "--out", str(out), "--jobs", "0", "--processes", str(processes)]
            args += ["--full"] if full else []
            args += ["--force"] if force else []
            args += ["--config", str(config)] if config is not None else []
            launch(python_argv("rgflow.app.cli", args), processes,  # process 0 reports
                   resume="A rerun of the same command resumes at the first stage that did not "
                   "finish (the stage cache in --out).")
            return
    import jax

    main_process = jax.process_index() == 0
    run_reproduce(cfg, out, force=force, log=typer.echo if main_process else (lambda *a: None),
                  jobs=0 if child and jobs is None else jobs)
    if main_process:
        typer.echo(f"summary: {out / 'summary.md'}")


def main():  # console-script entry point
    import jax

    from .._xla_cache import enable_compilation_cache

    jax.config.update("jax_enable_x64", True)
    enable_compilation_cache()
    app()


if __name__ == "__main__":  # `python -m rgflow.app.cli`: the processes of `--processes K`
    main()
