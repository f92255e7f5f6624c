"""The non-perturbative LPA (Wetterich) flow and the Gauss-net couplings as its UV data.

Writes <out>/<stem>.json and <stem>.png/.pdf; `--help` lists the flags. The study itself is
`rgflow.studies.frg_flow`.
"""

from rgflow.studies._cli import main

if __name__ == "__main__":
    main("frg_flow")
