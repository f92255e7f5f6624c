"""A free scalar from a cos-net, with φ⁴ engineered in parameter space (physics.md §12).

Writes <out>/<stem>.json and <stem>.png/.pdf; `--help` lists the flags. The study itself is
`rgflow.studies.phi4_network`.
"""

from rgflow.studies._cli import main

if __name__ == "__main__":
    main("phi4_network")
