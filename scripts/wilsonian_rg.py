"""Wilsonian mode elimination (physics.md §10): the Polchinski flow of the network's action
against the exact route, standardised couplings against the cutoff, and the 1/N suppression of
the running.

Writes <out>/wilsonian_<net>_d<d_in>.json (and _grid<P> for the dense grid) with .png/.pdf;
`--help` lists the flags (common flags plus --keep M and --widths). The study itself is
`rgflow.studies.wilsonian_rg`.
"""

from rgflow.studies._cli import main

if __name__ == "__main__":
    main("wilsonian_rg")
