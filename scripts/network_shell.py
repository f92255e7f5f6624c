"""The network's own quartic coupling under momentum-shell elimination (physics.md §13).

Writes <out>/<stem>.json and <stem>.png/.pdf; `--help` lists the flags. The study itself is
`rgflow.studies.network_shell`.
"""

from rgflow.studies._cli import main

if __name__ == "__main__":
    main("network_shell")
