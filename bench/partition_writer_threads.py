"""How many threads should write shards? fedpart's wall time and peak RSS by writer-pool size.

Runs ``fedpart.engine.partition`` (Dirichlet alpha=0.1 into 1000 clients, as in
``partition_vs_flwr.py``) on that benchmark's generated 1M- and 10M-row inputs with the shard
writer's pool forced to each size in ``--threads``, every run a fresh subprocess (the peak RSS is its
own), taken in ``--repeat`` rounds. Prints a markdown table (median wall, CPU and peak RSS per size).
This is what set :data:`fedpart.io.shards.MAX_WRITER_THREADS`; run it on a machine with at least as
many cores as the largest size::

    python3 bench/partition_writer_threads.py --threads 2,3,4,6,8 --repeat 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))

from partition_vs_flwr import DEFAULT_WORKDIR, RESULT_PREFIX, generate, run_one  # noqa: E402


def one(threads: int, data: Path, out: Path, clients: int) -> dict:
    """One run in this process, the writer pool forced to ``threads`` (called via ``--one``)."""
    import fedpart.io.shards as shards

    shards.writer_threads = lambda: threads
    return run_one("fedpart", data, out, clients)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="2,4,8", help="comma-separated pool sizes")
    parser.add_argument("--rows", default="1000000,10000000", help="comma-separated input sizes")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    out = args.workdir / "writer-threads-out"
    if args.one is not None:
        print(RESULT_PREFIX + json.dumps(one(args.one, args.data, out, args.clients)), flush=True)
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    sizes = [int(t) for t in args.threads.split(",")]
    inputs = [generate(args.workdir / f"input-{int(r)}.parquet", int(r)) for r in args.rows.split(",")]
    runs: dict[tuple[str, int], list[dict]] = {}
    for _ in range(args.repeat):
        for data in inputs:
            for threads in sizes:
                subprocess.run(["sync"], check=False)
                done = subprocess.run([sys.executable, __file__, "--one", str(threads), "--data", str(data),
                                       "--clients", str(args.clients), "--workdir", str(args.workdir)],
                                      capture_output=True, text=True, check=True)
                line = next(l for l in done.stdout.splitlines() if l.startswith(RESULT_PREFIX))
                runs.setdefault((data.name, threads), []).append(json.loads(line[len(RESULT_PREFIX):]))
    print("| input | writer threads | wall (s) | cpu (s) | peak RSS (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for (name, threads), results in runs.items():
        med = {k: statistics.median(r[k] for r in results) for k in ("wall_s", "cpu_s", "peak_rss_mib")}
        walls = ", ".join(f"{r['wall_s']:.2f}" for r in results)
        print(f"| {name} | {threads} | {med['wall_s']:.2f} ({walls}) | {med['cpu_s']:.2f} | {med['peak_rss_mib']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
