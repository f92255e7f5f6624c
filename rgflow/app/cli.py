"""The `rgflow` command line (typer): Monte Carlo and exact correlators to `.npz` + JSON
sidecars, and `reproduce`, the whole figure pipeline."""

from __future__ import annotations

import datetime
import platform
import sys
from pathlib import Path

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


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


@app.command()
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
    seed: int = typer.Option(0, help="seed of jax.random.key"),
    checkpoint: Path = typer.Option(None, help="checkpoint file: resume an interrupted run"),
    progress: bool = typer.Option(True, help="progress bar"),
):
    """Monte Carlo moments and connected correlators with error bars."""
    import jax
    import numpy as np

    from .._ensemble import measure as run_measure
    from .._io import save_json, save_npz

    model = _build(net, width, d_in, sigma_w, sigma_b)
    xs = _parse_inputs(inputs, net, d_in)
    try:
        m = run_measure(model, xs, n_nets, key=jax.random.key(seed), orders=_parse_orders(orders),
                        n_blocks=n_blocks, progress=progress, checkpoint=checkpoint)
    except (ValueError, TypeError) as e:
        raise typer.BadParameter(str(e)) from e
    arrays = {"xs": m.xs}
    for n in m.orders:
        arrays[f"moment_{n}"] = m.moment(n)
        arrays[f"moment_stderr_{n}"] = m.moment_stderr(n)
        arrays[f"connected_{n}"] = m.connected(n)
        arrays[f"connected_stderr_{n}"] = m.connected_stderr(n)
    save_npz(out, **{k: np.asarray(v) for k, v in arrays.items()})
    save_json(out.with_suffix(".json"), _sidecar(
        "measure", model, m.xs,
        {"seed": seed, "n_nets": n_nets, "n_blocks": n_blocks, "orders": list(m.orders),
         "arrays": sorted(arrays)}))
    typer.echo(f"wrote {out} and {out.with_suffix('.json')}")


@app.command()
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
    from .._io import save_json, save_npz

    model = _build(net, width, d_in, sigma_w, sigma_b)
    xs = _parse_inputs(inputs, net, d_in)
    arrays = {"xs": xs}
    try:
        for n in _parse_orders(orders):
            arrays[f"moment_{n}"] = exact_moment(model, xs, n)
            arrays[f"connected_{n}"] = exact_connected(model, xs, n)
            arrays[f"gp_{n}"] = gp_correlator(model, xs, n)
    except (ValueError, TypeError) as e:
        raise typer.BadParameter(str(e)) from e
    save_npz(out, **{k: np.asarray(v) for k, v in arrays.items()})
    save_json(out.with_suffix(".json"), _sidecar("exact", model, np.asarray(xs),
                                                 {"arrays": sorted(arrays)}))
    typer.echo(f"wrote {out} and {out.with_suffix('.json')}")


@app.command()
def reproduce(
    out: Path = typer.Option(Path("figures"), help="output folder for figures and their JSON"),
    quick: bool = typer.Option(False, "--quick", help="embedded quick profile (default)"),
    full: bool = typer.Option(False, "--full", help="the paper's 10⁶ networks per width"),
    config: Path = typer.Option(None, help="TOML file overriding the profile's settings"),
    force: bool = typer.Option(False, help="ignore cached stage results"),
):
    """Reproduce every figure from one configuration (cached, resumable)."""
    from .reproduce import load_config
    from .reproduce import reproduce as run_reproduce

    if quick and full:
        raise typer.BadParameter("choose one of --quick and --full")
    try:
        cfg = load_config(config, "full" if full else "quick")
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    run_reproduce(cfg, out, force=force, log=typer.echo)
    typer.echo(f"summary: {out / 'summary.md'}")


def main():  # console-script entry point
    import jax

    jax.config.update("jax_enable_x64", True)
    app()
