"""Fit a single reward (BT) and a user-mixture model on a benchmark and compare them per group.

    python examples/fit_and_compare.py [--data pets] [--method vpl]
"""

from __future__ import annotations

import argparse
import json

from pluralign.config import build_model, preset
from pluralign.eval import evaluate
from pluralign.eval.bench import benchmark_data


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="pets")
    parser.add_argument("--method", default="vpl")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    args = parser.parse_args(argv)
    train, test = benchmark_data(args.data)
    results = {}
    for method in dict.fromkeys(["bt", args.method]):
        config = preset(method) | ({"epochs": args.epochs} if args.epochs else {})
        model = build_model(method, config).fit(train, progress=False)
        report = evaluate(model, test, shots=(0, 8))
        results[method] = {"seen": report["seen"], "groups": report["groups"], "unseen_k8": report["unseen"].get("8")}
    print(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
