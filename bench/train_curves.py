"""Evidence for the training core: accuracy vs round on AG News under IID and Dirichlet label skew.

Partitions the AG News test split from ../shared/data (7,600 rows; the train split is not in the
snapshot) into 100 clients (IID, Dirichlet alpha=1, alpha=0.1) with a 20 % stratified test split,
then trains the same model with FedAvg, FedProx and centralised SGD (10 clients per round) and
writes a table, a plot and bench/results/train_curves.md.

    .venv/bin/python bench/train_curves.py [--rounds 40] [--device auto]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import fedpart
from fedpart.io.sources import ReadOptions
from fedpart.train.federated import FederatedConfig
from fedpart.train.report import format_report, load_run, write_report_plot
from fedpart.train.runner import train

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent.parent / "shared" / "data" / "ag_news" / "test.csv"
SPLITS = {"iid": {"scheme": "iid"}, "alpha1": {"scheme": "dirichlet", "alpha": 1.0},
          "alpha0.1": {"scheme": "dirichlet", "alpha": 0.1}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workdir", default=str(ROOT / "out" / "train_curves"))
    parser.add_argument("--lr", type=float, default=0.5)
    args = parser.parse_args()
    work = Path(args.workdir)
    results = ROOT / "results"
    results.mkdir(exist_ok=True)
    lines = [
        "# Training curves: AG News, 100 clients, 10 per round",
        "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, device {args.device}; "
        f"{args.rounds} rounds, 1 local epoch, batch 32, lr {args.lr}, FedProx mu 0.01.",
        "",
    ]
    runs_by_split = {}
    for split, params in SPLITS.items():
        parts = work / f"parts-{split}"
        fedpart.partition(DATA, task="tc", clients=100, min_client_size=10, test_frac=0.2, seed=0, out=parts,
                          overwrite=True, plot=False, read_options=ReadOptions(column_names=("label", "title", "description")),
                          **params)
        runs = []
        for algo in ("fedavg", "fedprox", "centralized"):
            config = FederatedConfig(algo=algo, rounds=args.rounds, clients_per_round=10, local_epochs=1, lr=args.lr,
                                     batch_size=32, mu=0.01 if algo == "fedprox" else 0.0, eval_every=5, seed=0)
            out = work / f"{split}-{algo}"
            start = time.perf_counter()
            train(parts, task="tc", out=out, config=config, device=args.device, overwrite=True)
            print(f"{split} {algo}: {time.perf_counter() - start:.1f} s", flush=True)
            runs.append(load_run(os.path.relpath(out)))
        runs_by_split[split] = runs
        write_report_plot(runs, results / f"train_curves_{split}.png")
        lines += [f"## {split}", "", "```", format_report(runs), "```", "",
                  f"![{split}](train_curves_{split}.png)", ""]
    (results / "train_curves.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
