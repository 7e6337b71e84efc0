"""The Bayes few-shot ceiling over seeds and protocols, beside the methods' curves from earlier bench runs.

    python benchmarks/few_shot_bound.py [--benchmarks pets attributes ideal-points] [--seeds 0 1 2]
        [--contexts random survey] [--methods benchmarks/results/seeds-{context}/results.json]
        [--out benchmarks/results/few_shot_bound]

``pluralign bench`` adds the ceiling (:mod:`pluralign.eval.ceiling`) to every new run; this script puts it
next to results already measured, without fitting anything again. Writes results.md (k = 8, mean over the
seeds), results.json (every k and seed) and, where ``--methods`` names a ``pluralign bench --seeds``
results.json per protocol, few_shot_{context}.png: the methods' mean curves, the ceiling and the oracle.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pluralign.data.synthetic import BENCHMARKS
from pluralign.eval.bench import benchmark_ceiling, mean_over_seeds
from pluralign.eval.ceiling import CEILING
from pluralign.eval.plots import plot_few_shot
from pluralign.io import write_json, write_text


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", nargs="+", default=["pets", "attributes", "ideal-points"],
                        choices=list(BENCHMARKS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--contexts", nargs="+", default=["random", "survey"], choices=["random", "survey"])
    parser.add_argument("--methods", default="benchmarks/results/seeds-{context}/results.json",
                        help="bench --seeds results per protocol ({context} is filled in); missing files are skipped")
    parser.add_argument("--out", default="benchmarks/results/few_shot_bound")
    args = parser.parse_args(argv)
    results: dict = {}
    lines = ["| benchmark | contexts | Bayes k=8 | oracle | gap | Bayes k=8 controversial | oracle | gap |",
             "|---|---|---|---|---|---|---|---|"]
    for name in args.benchmarks:
        for context in args.contexts:
            runs = [benchmark_ceiling(name, seed, context=context) for seed in args.seeds]
            mean = mean_over_seeds(runs)
            results.setdefault(name, {})[context] = {"seeds": args.seeds, "mean": mean, "runs": runs}
            at8, hard = mean["unseen"]["8"], mean["unseen"]["8"]["controversial"]
            lines.append(f"| {name} | {context} | {at8['accuracy']:.3f} | {at8['oracle_accuracy']:.3f} | "
                         f"{100 * (at8['oracle_accuracy'] - at8['accuracy']):.1f} | {hard['accuracy']:.3f} | "
                         f"{hard['oracle_accuracy']:.3f} | {100 * (hard['oracle_accuracy'] - hard['accuracy']):.1f} |")
            print(lines[-1], flush=True)
    note = (f"\nMean over seeds {', '.join(map(str, args.seeds))}; gap in points. The Bayes predictor knows the "
            "true rewards and prior over users and sees the same 8 context pairs as the methods.\n")
    write_json(f"{args.out}/results.json", results)
    write_text(f"{args.out}/results.md", "\n".join(lines) + "\n" + note)
    for context in args.contexts:
        methods_file = Path(args.methods.format(context=context))
        if not methods_file.exists():
            continue
        methods = json.loads(methods_file.read_text())["mean"]
        curves = {name: {**methods[name], CEILING: results[name][context]["mean"]}
                  for name in args.benchmarks if name in methods}
        plot_few_shot(curves, f"{args.out}/few_shot_{context}.png")
    return results


if __name__ == "__main__":
    main()
