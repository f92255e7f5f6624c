"""The free-theory check of HMS (figure 1): m_n against width N.

Writes <out>/<stem>.json and <stem>.png/.pdf; `--help` lists the flags. The study itself is
`rgflow.studies.free_theory`.
"""

from rgflow.studies._cli import main

if __name__ == "__main__":
    main("free_theory")
