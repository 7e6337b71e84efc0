"""Every method fits a benchmark with Lightning's GPU accelerator; seen / 8-shot accuracy and fit seconds.

    python benchmarks/gpu_smoke.py [--benchmarks pets] [--backbone PATH] [--out benchmarks/results/gpu/smoke_gpu.json]

A method that fails is recorded with the end of its traceback and the run goes on, so one device session
shows every method's state. ``tests/training/test_gpu.py`` is the test (CPU and GPU fits agree).
"""

from __future__ import annotations

import argparse
import os
import traceback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pluralign.config import build_model, preset  # noqa: E402
from pluralign.eval.bench import benchmark_data  # noqa: E402
from pluralign.eval.protocol import evaluate  # noqa: E402
from pluralign.io import write_json  # noqa: E402
from pluralign.methods import METHODS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", nargs="+", default=["pets"])
    parser.add_argument("--backbone", default=None, help="backbone path (default: the shipped all-MiniLM-L6-v2)")
    parser.add_argument("--accelerator", default="gpu")
    parser.add_argument("--out", default="benchmarks/results/gpu/smoke_gpu.json")
    args = parser.parse_args()
    results = {}
    for bench in args.benchmarks:
        train, test = benchmark_data(bench, 0)
        for name in METHODS:
            model = build_model(name, {**preset(name), "seed": 0, "backbone": args.backbone})
            try:
                model.fit(train, accelerator=args.accelerator)
                report = evaluate(model, test, shots=(0, 8))
            except Exception:  # record it and go on: one device session should show every method
                results[f"{bench}/{name}"] = {"error": traceback.format_exc()[-1500:]}
                print(bench, name, "FAILED", results[f"{bench}/{name}"]["error"], flush=True)
                continue
            results[f"{bench}/{name}"] = {
                "seen": report["seen"]["accuracy"], "k8": report["unseen"]["8"]["accuracy"],
                "k8_controversial": report["unseen"]["8"]["controversial"]["accuracy"],
                "oracle_k8": report["unseen"]["8"]["oracle_accuracy"], "fit_seconds": report["fit"]["fit_seconds"]}
            print(bench, name, results[f"{bench}/{name}"], flush=True)
            write_json(args.out, results)
    write_json(args.out, results)


if __name__ == "__main__":
    main()
