"""The running quartic coupling λ(Λ) of HMS (figure 3): refits, power counting, the diffrax flow.

Writes <out>/<stem>.json and <stem>.png/.pdf; `--help` lists the flags. The study itself is
`rgflow.studies.rg_lambda`.
"""

from rgflow.studies._cli import main

if __name__ == "__main__":
    main("rg_lambda")
