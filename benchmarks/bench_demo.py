"""The demo budget (issue 17, item 4): wall time and peak memory of `rgflow reproduce --quick`.

Runs the quick profile from scratch (`--force`, into a temporary folder, with an empty persistent
XLA compilation cache of its own) as a child process and samples its whole process tree (the
command and its worker processes) once a second from /proc. Memory is reported as the peak of the summed PSS (proportional set size:
pages shared between the forked workers are counted once) and, for comparison, the peak of the
summed RSS (shared pages counted in every process). Linux only.

    python benchmarks/bench_demo.py                 # default worker count
    python benchmarks/bench_demo.py --jobs 1 --jobs 2
    python benchmarks/bench_demo.py --warm          # then again with the cache it filled

Prints one line per run; the numbers of docs/benchmarks.md come from here.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        out.setdefault(ppid, []).append(int(pid))
    return out


def _tree(root: int) -> list[int]:
    kids, out, i = _children(), [root], 0
    while i < len(out):
        out += kids.get(out[i], [])
        i += 1
    return out


def _memory(pid: int) -> tuple[int, int, float]:
    """(PSS kB, RSS kB, CPU seconds) of one process (zeros if it is gone)."""
    try:
        fields = {}
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            parts = line.split()
            if parts and parts[-1] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1])
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
        return fields.get("Pss", 0), fields.get("Rss", 0), cpu
    except (OSError, ValueError, IndexError):
        return 0, 0, 0.0


def measure(command: list[str], env: dict, interval: float = 1.0) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)
    peak_pss = peak_rss = 0
    cpu: dict[int, float] = {}
    while proc.poll() is None:
        pss = rss = 0
        for pid in _tree(proc.pid):
            p, r, c = _memory(pid)
            pss, rss = pss + p, rss + r
            cpu[pid] = max(cpu.get(pid, 0.0), c)
        peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
        time.sleep(interval)
    err = proc.stderr.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{err[-2000:]}")
    return {"wall_s": time.perf_counter() - t0, "peak_pss_gib": peak_pss / 2**20,
            "peak_rss_gib": peak_rss / 2**20, "cpu_s_sampled": sum(cpu.values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, action="append",
                    help="worker processes (repeat for several runs; default: rgflow's default)")
    ap.add_argument("--warm", action="store_true",
                    help="after each cold run, run again with the XLA cache it filled")
    args = ap.parse_args()
    rgflow = Path(sys.executable).with_name("rgflow")
    print(f"load before: {os.getloadavg()[0]:.2f}, CPUs: {len(os.sched_getaffinity(0))}")
    for jobs in args.jobs or [None]:
        with tempfile.TemporaryDirectory() as tmp:
            # a cold start: an empty compilation cache (`RGFLOW_XLA_CACHE`), no cached stages;
            # `--warm` then repeats the run with the cache the first run filled
            env = {**os.environ, "RGFLOW_XLA_CACHE": str(Path(tmp) / "xla")}
            cmd = [str(rgflow), "reproduce", "--quick", "--force", "--out", str(Path(tmp) / "out")]
            if jobs is not None:
                cmd += ["--jobs", str(jobs)]
            for cache in ("empty", "warm") if args.warm else ("empty",):
                r = measure(cmd, env)
                print(f"jobs={jobs if jobs is not None else 'default'}, {cache} XLA cache: wall "
                      f"{r['wall_s']:.0f} s, peak PSS (tree) {r['peak_pss_gib']:.2f} GiB, peak RSS "
                      f"(tree, shared pages counted per process) {r['peak_rss_gib']:.2f} GiB, "
                      f"CPU ≥ {r['cpu_s_sampled']:.0f} s (sampled once a second)", flush=True)


if __name__ == "__main__":
    main()
