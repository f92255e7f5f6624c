"""The Wilsonian three-ensemble test through networks (physics.md §13).

Writes <out>/<stem>.json and <stem>.png/.pdf; `--help` lists the flags. The study itself is
`rgflow.studies.wilsonian_shell`.
"""

from rgflow.studies._cli import main

if __name__ == "__main__":
    main("wilsonian_shell")
