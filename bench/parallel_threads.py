"""Benchmark: tasks running side by side, each with every CPU's threads vs. its share of them.

run.pl starts up to one task per CPU at once and, unless told otherwise, gives each task
``OMP_NUM_THREADS = CPUs / tasks running at once``. This measures why: ``--tasks`` processes each embed
the same batches of 10 s mixtures with a mini Cascade (the work of a stage-8 job), once with every
process on all CPUs' threads (oversubscribed) and once with each on its share; the wall time of the
whole group is compared, side by side in one run.
Run: ``tools/venv/bin/python bench/parallel_threads.py [--tasks 2] [--batches 4]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

WORKER = """
import torch
from inmsrl.models.config import build_model
torch.manual_seed(0)
model = build_model({"type": "cascade", "target_sources": ["drums", "bass", "piano", "guitar"],
                     "unet": {"channels": [4, 8, 16, 32, 64, 128]}, "mel_bands": 128},
                    ("drums", "bass", "piano", "guitar", "residuals")).eval()
mixture = 0.05 * torch.randn(8, 441000)
with torch.no_grad():
    for _ in range(BATCHES):
        model.embed(mixture)
"""


def group_wall_time(tasks: int, threads: int, batches: int) -> float:
    """Seconds until ``tasks`` worker processes with ``threads`` threads each have all finished."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    workers = [subprocess.Popen([sys.executable, "-c", WORKER.replace("BATCHES", str(batches))], env=env)
               for _ in range(tasks)]
    if any(w.wait() != 0 for w in workers):
        raise SystemExit("a worker failed")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2, help="processes at once [%(default)s]")
    parser.add_argument("--batches", type=int, default=4, help="batches of 8 × 10 s per process [4]")
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    share = max(1, cpus // args.tasks)
    print(f"# {args.tasks} tasks at once on {cpus} CPUs, each embedding {args.batches} batches of 8 × 10 s "
          "(mini Cascade)")
    print(f"{'threads per task':<18} {'wall s':>8}")
    every = group_wall_time(args.tasks, cpus, args.batches)
    shared = group_wall_time(args.tasks, share, args.batches)
    print(f"{cpus:<18} {every:>8.1f}")
    print(f"{share:<18} {shared:>8.1f}")
    print(f"speed-up of the share: {every / shared:.2f}x")


if __name__ == "__main__":
    main()
