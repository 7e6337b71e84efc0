"""The Bayes-optimal few-shot predictor: how well *any* method can do on unseen users from k context pairs.

    python benchmarks/few_shot_bound.py [--benchmarks pets attributes ideal-points] [--seeds 0 1 2]
        [--contexts random survey] [--methods benchmarks/results/seeds-{context}/results.json]
        [--out benchmarks/results/few_shot_bound]

The predictor knows what no method is given: the benchmark's true reward functions, temperature and
prior over users (pets: two equally likely types; attributes: four single-attribute types; ideal-points:
Dirichlet(alpha) weights over the true prototypes, integrated by Monte Carlo). For an unseen user it
takes the posterior over users given their first k context pairs and predicts each query pair with the
posterior predictive P(a ≻ b | context) (a tie at exactly 1/2 counts as half a hit). Its expected accuracy
is the ceiling of the protocol; the oracle (which knows the user) is the ceiling of the benchmark, and the
difference is what k pairs cannot tell. On one draw of 12 unseen users a method can land above it by
chance (a few points at k = 1-2, where most users are a coin flip), not in expectation.

Writes results.md (k = 8, mean over seeds), results.json (every k and seed) and, where ``--methods`` names
a ``pluralign bench --seeds`` results.json per protocol, few_shot_{context}.png: the methods' mean curves
with the Bayes curve and the oracle.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np

from pluralign.data.synthetic import build_benchmark
from pluralign.data.synthetic import attributes as attributes_bench
from pluralign.data.synthetic import ideal_points, pets
from pluralign.eval.plots import plot_few_shot
from pluralign.io import write_json, write_text

SHOTS = (0, 1, 2, 4, 8, 16)
MC_SAMPLES = 40_000  # ideal-points: Dirichlet draws; the 8-shot figure moves < 0.2 points between MC seeds

# a benchmark's user prior as (samples, log prior weights) and its P(chosen ≻ rejected) logits [S, rows]
UserModel = tuple[np.ndarray, Callable[[np.ndarray, list[dict]], np.ndarray]]


def pets_users(seed: int) -> UserModel:
    types = np.array([pets.USER_TYPES[t] for t in pets.USER_TYPES])  # [2, (helpful, harmless)]

    def logits(w: np.ndarray, rows: list[dict]) -> np.ndarray:
        d = np.array([[r["chosen_attributes"][a] - r["rejected_attributes"][a] for a in ("helpful", "harmless")]
                      for r in rows]).reshape(-1, 2)
        return w @ d.T / pets.TEMPERATURE

    return types, logits


def attributes_users(seed: int) -> UserModel:
    pool, _ = attributes_bench.response_pool()
    z_of = {o["text"]: o["z"] for split in pool.values() for options in split for o in options}

    def logits(w: np.ndarray, rows: list[dict]) -> np.ndarray:
        d = np.array([z_of[r["chosen"]] - z_of[r["rejected"]] for r in rows]).reshape(-1, w.shape[1])
        return w @ d.T / attributes_bench.TEMPERATURE

    return np.eye(4), logits


def ideal_points_users(seed: int, n_prototypes: int = 3, dim: int = 16, alpha: float = 0.3) -> UserModel:
    # the builder's first draw from its generator is the prototypes (ideal_points.build, default sizes)
    prototypes = np.random.default_rng(seed).standard_normal((n_prototypes, dim))
    ideals = np.random.default_rng(10_000 + seed).dirichlet([alpha] * n_prototypes, MC_SAMPLES) @ prototypes

    def logits(a: np.ndarray, rows: list[dict]) -> np.ndarray:
        c = np.array([r["chosen_embedding"] for r in rows]).reshape(-1, dim)
        r_ = np.array([r["rejected_embedding"] for r in rows]).reshape(-1, dim)
        # ||r − a||² − ||c − a||² = ||r||² − ||c||² − 2 aᵀ(r − c)
        return ((r_ ** 2).sum(1) - (c ** 2).sum(1) - 2 * a @ (r_ - c).T) / ideal_points.TEMPERATURE

    return ideals, logits


USER_MODELS = {"pets": pets_users, "attributes": attributes_users, "ideal-points": ideal_points_users}


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0, -x)


def bound(name: str, seed: int, context: str, shots=SHOTS) -> dict:
    """Accuracy of the Bayes few-shot predictor and of the oracle on the unseen users' query rows."""
    bench = build_benchmark(name, seed=seed, context=context)
    users, logits = USER_MODELS[name](seed)
    contexts, queries = defaultdict(list), defaultdict(list)
    for row in bench.test:
        if row.get("role") == "context":
            contexts[row["user_id"]].append(row)
        elif row.get("role") == "query":
            queries[row["user_id"]].append(row)
    result = {}
    for k in shots:
        hits, oracle, hits_c, oracle_c = [], [], [], []
        for user, rows in queries.items():
            log_post = log_sigmoid(logits(users, contexts[user][:k])).sum(1)
            post = np.exp(log_post - log_post.max())
            p = (post / post.sum()) @ (1 / (1 + np.exp(-logits(users, rows))))
            for row, p_row in zip(rows, p):
                hit = 0.5 if abs(p_row - 0.5) < 1e-9 else float(p_row > 0.5)  # a tie is a coin flip
                hits.append(hit)
                oracle.append(row["oracle_p"] > 0.5)
                if row["controversial"]:
                    hits_c.append(hit)
                    oracle_c.append(row["oracle_p"] > 0.5)
        result[str(k)] = {"accuracy": float(np.mean(hits)), "oracle_accuracy": float(np.mean(oracle)),
                          "controversial": {"accuracy": float(np.mean(hits_c)),
                                            "oracle_accuracy": float(np.mean(oracle_c))}}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", nargs="+", default=list(USER_MODELS), choices=list(USER_MODELS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--contexts", nargs="+", default=["random", "survey"], choices=["random", "survey"])
    parser.add_argument("--methods", default="benchmarks/results/seeds-{context}/results.json",
                        help="bench --seeds results per protocol ({context} is filled in); missing files are skipped")
    parser.add_argument("--out", default="benchmarks/results/few_shot_bound")
    args = parser.parse_args()
    results: dict = {}
    lines = ["| benchmark | contexts | Bayes k=8 | oracle | gap | Bayes k=8 controversial | oracle | gap |",
             "|---|---|---|---|---|---|---|---|"]
    for name in args.benchmarks:
        for context in args.contexts:
            runs = [bound(name, seed, context) for seed in args.seeds]
            results.setdefault(name, {})[context] = {"seeds": args.seeds, "runs": runs}
            at8 = [r["8"] for r in runs]
            mean = {key: float(np.mean([r[key] for r in at8])) for key in ("accuracy", "oracle_accuracy")}
            contr = {key: float(np.mean([r["controversial"][key] for r in at8]))
                     for key in ("accuracy", "oracle_accuracy")}
            lines.append(f"| {name} | {context} | {mean['accuracy']:.3f} | {mean['oracle_accuracy']:.3f} | "
                         f"{100 * (mean['oracle_accuracy'] - mean['accuracy']):.1f} | {contr['accuracy']:.3f} | "
                         f"{contr['oracle_accuracy']:.3f} | {100 * (contr['oracle_accuracy'] - contr['accuracy']):.1f} |")
            print(lines[-1], flush=True)
    note = (f"\nMean over seeds {', '.join(map(str, args.seeds))}; gap in points. The Bayes predictor knows the true "
            "rewards and user prior and sees the same 8 context pairs as the methods.\n")
    write_json(f"{args.out}/results.json", results)
    write_text(f"{args.out}/results.md", "\n".join(lines) + "\n" + note)
    for context in args.contexts:
        methods_file = Path(args.methods.format(context=context))
        if not methods_file.exists():
            continue
        methods = json.loads(methods_file.read_text())["mean"]
        curves = {name: {int(k): float(np.mean([run[k]["accuracy"] for run in results[name][context]["runs"]]))
                         for k in results[name][context]["runs"][0]}
                  for name in args.benchmarks if name in methods}
        plot_few_shot({name: methods[name] for name in curves}, f"{args.out}/few_shot_{context}.png", bounds=curves)


if __name__ == "__main__":
    main()
