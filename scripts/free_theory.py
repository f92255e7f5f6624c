"""The free-theory check of HMS: log m_n against log N (physics.md §8, figure 1).

Writes DIR/free_theory_d<d_in>.{png,pdf,json}. Logic lives in `rgflow._free_theory`.
"""

import argparse
from pathlib import Path

import rgflow  # noqa: F401  (enables float64)
from rgflow._free_theory import HMS_WIDTHS, free_theory, plot_free_theory
from rgflow._io import save_json


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--nets", default="erf,relu,gauss", help="comma-separated: erf,relu,gauss")
    p.add_argument("--d-in", type=int, default=1)
    p.add_argument("--widths", default=",".join(map(str, HMS_WIDTHS)))
    p.add_argument("--n-nets", type=int, default=100_000, help="networks per width")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="20 000 networks per width")
    p.add_argument("--out", default="figures")
    a = p.parse_args(argv)
    n_nets = 20_000 if a.quick else a.n_nets
    res = free_theory(
        [s.strip() for s in a.nets.split(",")], d_in=a.d_in,
        widths=[int(w) for w in a.widths.split(",")], n_nets=n_nets, seed=a.seed, progress=True,
    )
    stem = Path(a.out) / f"free_theory_d{a.d_in}"
    save_json(f"{stem}.json", res)
    files = plot_free_theory(res, stem)
    print("slopes:", res["slopes"], "->", *map(str, files))


if __name__ == "__main__":
    main()
