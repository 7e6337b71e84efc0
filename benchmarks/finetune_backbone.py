"""PAL's "Large" setting against its "Tiny" one: the same preset with the top backbone layers fine-tuned.

    python benchmarks/finetune_backbone.py [--method pal-a] [--data attributes] [--layers 2] [--epochs 2]
        [--lr 1e-4] [--context random|survey] [--out benchmarks/results/finetune_pal-a_attributes.json]

Both models fit the same rows with the method's shipped preset; the tuned one then trains its top
``--layers`` transformer layers with the head for ``--epochs`` epochs. Figures: seen-user accuracy,
controversial pairs, unseen users at 8 shots (oracle on the same rows), fit seconds.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pluralign.config import build_model, preset  # noqa: E402
from pluralign.eval import evaluate  # noqa: E402
from pluralign.eval.bench import benchmark_data  # noqa: E402
from pluralign.io import write_json  # noqa: E402


def summary(report: dict, stats: dict) -> dict:
    def pair(block: dict) -> list:
        return [round(block.get("accuracy", float("nan")), 4), round(block.get("oracle_accuracy", float("nan")), 4)]

    return {"seen": pair(report["seen"]), "controversial": pair(report["controversial"]),
            "unseen_k8": pair(report["unseen"]["8"]), "fit_seconds": stats["fit_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="pal-a", choices=["pal-a", "pal-b"])
    parser.add_argument("--data", default="attributes")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--context", default="random", choices=["random", "survey"])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    train, test = benchmark_data(args.data, context=args.context)
    results = {}
    for name, extra in (("tiny", {}), ("large", dict(finetune_layers=args.layers, finetune_epochs=args.epochs,
                                                     finetune_lr=args.lr))):
        model = build_model(args.method, {**preset(args.method), **extra})
        model.fit(train, progress=name == "large")
        results[name] = summary(evaluate(model, test, shots=(8,)), model.fit_stats_)
        print(name, json.dumps(results[name]), flush=True)
    out = args.out or f"benchmarks/results/finetune_{args.method}_{args.data}_{args.context}.json"
    write_json(out, {"method": args.method, "data": args.data, "context": args.context, "layers": args.layers,
                     "epochs": args.epochs, "lr": args.lr, "results": results})


if __name__ == "__main__":
    main()
