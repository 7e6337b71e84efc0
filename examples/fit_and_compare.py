"""Fit a single reward (BT) and a user-mixture model on a benchmark and compare them per group.

    python examples/fit_and_compare.py [--data pets] [--method vpl]

Each model's report, then the paired comparison: the difference on the same rows with its 95% interval over the
users, narrower than two reports' intervals side by side, since both models meet the same users and pairs.
"""

from __future__ import annotations

import argparse
import json

from pluralign.config import build_model, preset
from pluralign.eval import evaluate
from pluralign.eval.bench import benchmark_data
from pluralign.eval.compare import compare
from pluralign.eval.metrics import half_width


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="pets")
    parser.add_argument("--method", default="vpl")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    args = parser.parse_args(argv)
    train, test = benchmark_data(args.data)
    results, models = {}, {}
    for method in dict.fromkeys(["bt", args.method]):
        config = preset(method) | ({"epochs": args.epochs} if args.epochs else {})
        models[method] = model = build_model(method, config).fit(train, progress=False)
        report = evaluate(model, test, shots=(0, 8))
        results[method] = {"seen": report["seen"], "groups": report["groups"], "unseen_k8": report["unseen"].get("8")}
    print(json.dumps(results, indent=1))
    if args.method != "bt":
        paired = compare(models[args.method], models["bt"], test, shots=8)
        results["paired"] = paired
        for name, label in (("seen", "seen users"), ("unseen", "unseen users, 8 shots")):
            if (half := half_width(d := paired.get(name, {}), "difference_se")) is not None:
                print(f"{label}: {args.method} − bt = {100 * d['difference']:+.1f} ± {100 * half:.1f} points "
                      f"(95%, paired on {d['n']} rows of {d['users']} users)")
    return results


if __name__ == "__main__":
    main()
