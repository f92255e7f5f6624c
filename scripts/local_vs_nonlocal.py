"""Operator choice: constant vs x-dependent vs bilocal quartic couplings (HMS §3.4).

Writes <out>/<stem>.json and <stem>.png/.pdf; `--help` lists the flags. The study itself is
`rgflow.studies.local_vs_nonlocal`.
"""

from rgflow.studies._cli import main

if __name__ == "__main__":
    main("local_vs_nonlocal")
