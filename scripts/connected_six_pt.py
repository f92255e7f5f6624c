"""The connected 6-pt function against width: the 1/N² falloff (HMS figure 2).

Writes <out>/<stem>.json and <stem>.png/.pdf; `--help` lists the flags. The study itself is
`rgflow.studies.connected_six_pt`.
"""

from rgflow.studies._cli import main

if __name__ == "__main__":
    main("connected_six_pt")
