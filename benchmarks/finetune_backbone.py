"""A method's "Large" setting against its "Tiny" one: the same preset with the top backbone layers fine-tuned.

    python benchmarks/finetune_backbone.py [--method pal-a|pal-b|vpl|micro|gpm|bt] [--data attributes] [--layers 2] [--epochs 3]
        [--lr 3e-4] [--lora-rank 8] [--seeds 0 1 2] [--contexts random survey] [--accelerator gpu]
        [--backbone PATH] [--skip-tiny] [--set k=4 (pal-a, pal-b)] [--data-set n_unseen_users=48]
        [--few-shot map training-users (pal-a, pal-b, gpm)]
        [--out benchmarks/results/finetune_pal-a_attributes.json]

For each seed both models fit the same rows with the method's shipped preset; the tuned one then trains
its top ``--layers`` transformer layers with the head for ``--epochs`` epochs (with ``--lora-rank``, LoRA
adapters of those layers instead of their weights). Training rows do not depend on the few-shot protocol,
so one fit is evaluated under each ``--contexts`` protocol, and under each ``--few-shot`` rule (``runs`` then
holds ``large:RULE`` for each rule; without the option, ``large`` with the preset's rule). Figures:
seen-user accuracy, controversial pairs, unseen users at 8 shots (oracle on the same rows), fit seconds;
with several seeds also their mean.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from pluralign.config import build_model, parse_overrides, preset  # noqa: E402
from pluralign.eval import evaluate  # noqa: E402
from pluralign.eval.bench import benchmark_data  # noqa: E402
from pluralign.eval.metrics import interval_quantile, standard_error_of_mean  # noqa: E402
from pluralign.io import write_json  # noqa: E402
from pluralign.methods import METHODS  # noqa: E402


def summary(report: dict) -> dict:
    def pair(block: dict) -> list:
        return [round(block.get("accuracy", float("nan")), 4), round(block.get("oracle_accuracy", float("nan")), 4)]

    k8 = report["unseen"]["8"]
    return {"seen": pair(report["seen"]), "controversial": pair(report["controversial"]), "unseen_k8": pair(k8),
            # over the unseen users, with its degrees of freedom (users − 1); absent with fewer than two of them
            **({"unseen_k8_gap_se": round(k8["gap_to_oracle_se"], 4), "unseen_k8_se_df": k8["se_df"]}
               if k8.get("gap_to_oracle_se") else {})}


def mean(runs: list[dict]) -> dict:
    """Element-wise mean of the seeds' [accuracy, oracle] pairs (and seconds); the standard error of the
    gap becomes that of the mean gap, its degrees of freedom the seeds' sum (each seed draws its own users), and
    ``unseen_k8_gap_interval`` the 95% half-width, Student's t on them."""
    errors = ("unseen_k8_gap_se", "unseen_k8_se_df")
    merged = {key: np.round(np.mean([r[key] for r in runs], axis=0), 4).tolist()
              for key in runs[0] if key not in errors}
    if all(key in r for r in runs for key in errors):
        merged["unseen_k8_gap_se"] = round(standard_error_of_mean([r["unseen_k8_gap_se"] for r in runs]), 4)
        merged["unseen_k8_se_df"] = sum(r["unseen_k8_se_df"] for r in runs)
        merged["unseen_k8_gap_interval"] = round(
            interval_quantile(merged["unseen_k8_se_df"]) * merged["unseen_k8_gap_se"], 4)
    return merged


def run_name(setting: str, rule: str | None) -> str:
    return setting if rule is None else f"{setting}:{rule}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="pal-a", choices=[m for m in METHODS if m != "maxmin"])
    parser.add_argument("--data", default="attributes")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--lora-rank", type=int, default=0,
                        help="train LoRA adapters of this rank on the top layers instead of their weights")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--contexts", nargs="+", default=["random", "survey"], choices=["random", "survey"])
    parser.add_argument("--accelerator", default="auto", help="Lightning accelerator for both fits (cpu, gpu, ...)")
    parser.add_argument("--backbone", default=None, help="backbone path (default: the shipped all-MiniLM-L6-v2)")
    parser.add_argument("--skip-tiny", action="store_true", help="fit only the fine-tuned model")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a preset argument for both models, e.g. --set k=4")
    parser.add_argument("--data-set", dest="data_options", action="append", default=[], metavar="KEY=VALUE",
                        help="a keyword of the benchmark's builder, e.g. --data-set n_unseen_users=48")
    parser.add_argument("--few-shot", nargs="+", default=None, metavar="RULE",
                        help="evaluate each fit under each of these few-shot rules (e.g. map training-users)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    try:
        overrides = parse_overrides(args.overrides)
        data_options = parse_overrides(args.data_options)
    except ValueError as err:
        parser.error(str(err))
    known_rules = getattr(METHODS[args.method], "few_shot_rules", ())
    if args.few_shot and not set(args.few_shot) <= set(known_rules):
        parser.error(f"--few-shot: {args.method} takes {', '.join(known_rules) or 'no few-shot rule'}")
    settings = {"large": dict(finetune_layers=args.layers, finetune_epochs=args.epochs, finetune_lr=args.lr,
                              finetune_lora_rank=args.lora_rank)}
    if not args.skip_tiny:
        settings = {"tiny": {}, **settings}
    out = args.out or f"benchmarks/results/finetune_{args.method}_{args.data}.json"
    rules = args.few_shot or [None]
    runs: dict[str, dict[str, list[dict]]] = {run_name(name, rule): {c: [] for c in args.contexts}
                                              for name in settings for rule in rules}
    record = {"method": args.method, "data": args.data, "layers": args.layers, "epochs": args.epochs,
              "lr": args.lr, "lora_rank": args.lora_rank, "seeds": args.seeds, "accelerator": args.accelerator,
              "overrides": overrides, **({"data_options": data_options} if data_options else {}),
              **({"few_shot": args.few_shot} if args.few_shot else {}), "runs": runs}
    for seed in args.seeds:
        data = {c: benchmark_data(args.data, seed, context=c, **data_options) for c in args.contexts}
        train = data[args.contexts[0]][0]
        for name, extra in settings.items():
            model = build_model(args.method, {**preset(args.method), "seed": seed, "backbone": args.backbone,
                                              **overrides, **extra})
            model.fit(train, progress=name == "large", accelerator=args.accelerator)
            for rule in rules:
                if rule is not None:
                    model.few_shot = rule  # the rule only reads the fitted network: one fit serves every rule
                for context, (_, test) in data.items():
                    result = {**summary(evaluate(model, test, shots=(8,))),
                              "fit_seconds": model.fit_stats_["fit_seconds"]}
                    runs[run_name(name, rule)][context].append(result)
                    print(f"seed {seed} {run_name(name, rule)} {context}: {json.dumps(result)}", flush=True)
            write_json(out, record)  # partial results survive an interruption
    if len(args.seeds) > 1:
        record["mean"] = {name: {c: mean(r) for c, r in by_context.items()} for name, by_context in runs.items()}
        print(json.dumps(record["mean"], indent=1))
    write_json(out, record)


if __name__ == "__main__":
    main()
