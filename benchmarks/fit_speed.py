"""Fit time, pairs/s and peak memory of each method on a benchmark, from cached embeddings.

    python benchmarks/fit_speed.py [--methods bt vpl ...] [--data pets] [--threads N]
        [--out benchmarks/results/fit_DATA.json]

Embeddings are computed (or read from the cache) first and not timed: the figure is the fit itself,
with each method's shipped preset. Each method fits in a fresh process, as ``pluralign fit`` would, so
its peak memory (``pluralign.training.memory``) includes what a first fit loads and nothing of the others.
``--threads N`` fits on N torch threads (default: torch's, one per core).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from pluralign.config import build_model, preset  # noqa: E402
from pluralign.eval import evaluate  # noqa: E402
from pluralign.eval.bench import benchmark_data  # noqa: E402
from pluralign.io import write_json  # noqa: E402
from pluralign.methods import METHODS  # noqa: E402


def measure(method: str, data: str, threads: int | None = None) -> dict:
    if threads:  # 1 is the bench's setting: small heads fit about as fast on one thread
        torch.set_num_threads(threads)
    train, test = benchmark_data(data)
    model = build_model(method, preset(method))
    model.featurize(train)  # warm the embedding cache: not part of the fit timing
    model.fit(train, progress=False)
    report = evaluate(model, test, shots=(8,))
    return {**model.fit_stats_, "seen_accuracy": report["seen"].get("accuracy"), "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--data", default="pets")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/fit_DATA.json (shipped: pets)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default 0: torch's, one per core)")
    args = parser.parse_args()
    results = {}
    for method in args.methods:  # one after another, never side by side: the timings need a quiet machine
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as fresh:
            results[method] = fresh.submit(measure, method, args.data, args.threads).result()
        print(method, json.dumps(results[method]))
    write_json(args.out or f"benchmarks/results/fit_{args.data}.json", {"data": args.data, "methods": results})


if __name__ == "__main__":
    main()
