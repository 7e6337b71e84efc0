"""Active queries (Poddar et al. 2024, §4.3): do fewer chosen questions match 8 random ones?

    python benchmarks/active_queries.py [--method vpl] [--benchmark attributes] [--seeds 0 1 2]
        [--budgets 1 2 4 8] [--draws 10] [--set KEY=VALUE ...] [--out benchmarks/results/active_queries]
    python benchmarks/active_queries.py --render benchmarks/results/active_queries   # results.md, plot again, no fit

For each seed, the method (any but bt: its shipped preset, ``--set`` on top) is fitted on the
benchmark's training rows. Each unseen user's 16 context pairs form the pool of questions; their query pairs
are scored after k answers:
- random: k pairs drawn at random from the pool (mean of ``--draws`` draws per user);
- active: k pairs picked one at a time by ``question_order`` (largest expected information gain under the
  current posterior, :mod:`pluralign.methods.active`), each answered as the user answered it.
Writes results.md, results.json and active_queries.png (accuracy vs k, the oracle dashed). results.md also
gives each k's active-minus-random difference paired on the same users, and active at each k minus random at the
largest budget: whether fewer chosen questions reach that many random ones.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from pluralign.config import build_model, parse_overrides, preset
from pluralign.data import PreferenceSet
from pluralign.data.synthetic import build_benchmark
from pluralign.eval.metrics import hits, interval_quantile
from pluralign.eval.plots import plt, save_figure
from pluralign.io import write_json, write_text
from pluralign.methods.active import question_order


def accuracy(model, features, user_context: list[int], queries: list[int]) -> float:
    vector = model.infer_user(features[user_context])
    logits = model.logits_features(features[queries], vector.mean.expand(len(queries), -1))
    return float(hits(torch.sigmoid(logits).numpy()).mean())  # a tie counts half, as in the protocol


def run_seed(method: str, benchmark: str, seed: int, budgets: list[int], draws: int, changes: dict) -> dict:
    bench = build_benchmark(benchmark, seed=seed)
    model = build_model(method, preset(method), seed=seed, **changes).fit(PreferenceSet.from_rows(bench.train),
                                                                           progress=False)
    test = PreferenceSet.from_rows(bench.test)
    features = model.featurize(test)
    pools, queries = defaultdict(list), defaultdict(list)
    for i, row in enumerate(test.rows):
        if row.get("role") == "context":
            pools[row["user_id"]].append(i)
        elif row.get("role") == "query":
            queries[row["user_id"]].append(i)
    rng = np.random.default_rng(seed)
    scores = {"random": defaultdict(list), "active": defaultdict(list)}
    oracle = []
    for user, pool in pools.items():
        oracle.append(float(hits(np.array([test.rows[i]["oracle_p"] for i in queries[user]])).mean()))  # tie: half
        for k in budgets:
            scores["random"][k].append(np.mean([accuracy(model, features, list(rng.choice(pool, k, replace=False)),
                                                         queries[user]) for _ in range(draws)]))
        asked = [pool[j] for j in question_order(model, features[pool], max(budgets))]
        for k in budgets:
            scores["active"][k].append(accuracy(model, features, asked[:k], queries[user]))
    return {name: {str(k): float(np.mean(v)) for k, v in by_k.items()} for name, by_k in scores.items()} | {
        "oracle": float(np.mean(oracle)),
        "per_user": {"oracle": oracle, **{name: {str(k): v for k, v in by_k.items()} for name, by_k in scores.items()}}}


def mean_interval(per_user: np.ndarray) -> tuple[float, float]:
    """The mean of per-user values in points, ± its 95% interval: Student's t on n − 1 degrees of freedom for n
    users times the standard error (each user's queries share one set of answers, so the user is the unit)."""
    se = float(per_user.std(ddof=1) / np.sqrt(len(per_user)))
    return 100 * float(per_user.mean()), 100 * interval_quantile(len(per_user) - 1) * se


def gap_interval(runs: dict, name: str, k: int) -> tuple[float, float]:
    """Points under the oracle over every seed's unseen users, ± a 95% interval over those users."""
    return mean_interval(np.concatenate([np.subtract(r["per_user"]["oracle"], r["per_user"][name][str(k)])
                                         for r in runs.values()]))


def paired_interval(runs: dict, a: tuple[str, int], b: tuple[str, int]) -> tuple[float, float]:
    """Points of arm ``a`` (name, k) over arm ``b`` on the same users of every seed, ± a 95% interval of the
    per-user differences: most of the noise (which users, which queries) is shared by the two arms."""
    return mean_interval(np.concatenate([np.subtract(r["per_user"][a[0]][str(a[1])], r["per_user"][b[0]][str(b[1])])
                                         for r in runs.values()]))


def paired_lines(runs: dict, budgets: list[int]) -> list[str]:
    """Markdown rows: active minus random at each k, and active at each k minus random at the largest budget."""
    top = max(budgets)
    rows = [("active − random, same k", [("active", k, "random", k) for k in budgets]),
            (f"active − random at k = {top}", [("active", k, "random", top) for k in budgets])]
    lines = ["| points, paired on the same users, ± 95% | " + " | ".join(f"k = {k}" for k in budgets) + " |",
             "|---|" + "---|" * len(budgets)]
    for label, arms in rows:
        cells = ["{:+.1f} ± {:.1f}".format(*paired_interval(runs, (a, ka), (b, kb))) for a, ka, b, kb in arms]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def report(method: str, benchmark: str, runs: dict, budgets: list[int], mean: dict, oracle: float,
           draws: int | None) -> str:
    """results.md: accuracy after k answers, the gap to the oracle and the paired rows, each ± a 95% interval."""
    lines = [f"| {benchmark}, {method} | " + " | ".join(f"k = {k}" for k in budgets) + " |",
             "|---|" + "---|" * len(budgets)]
    for name in ("random", "active"):
        lines.append(f"| {name} | " + " | ".join(f"{mean[name][str(k)]:.3f}" for k in budgets) + " |")
    lines += ["", "| points under the oracle, ± 95% over the users | " + " | ".join(f"k = {k}" for k in budgets)
              + " |", "|---|" + "---|" * len(budgets)]
    for name in ("random", "active"):
        cells = ["{:.1f} ± {:.1f}".format(*gap_interval(runs, name, k)) for k in budgets]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [""] + paired_lines(runs, budgets)
    seeds = ", ".join(map(str, runs))
    random = f" Random: {draws} draws per user." if draws else " Random: 10 draws per user (the default)."
    return ("\n".join(lines) + f"\n\nAccuracy on the unseen users' query pairs after k answers, mean over seeds "
            f"{seeds}; oracle {oracle:.3f}.{random} ± is Student's t on the users' degrees of freedom times the "
            "standard error over the users of all seeds.\n")


def plot(method: str, benchmark: str, mean: dict, oracle: float, budgets: list[int], out: str) -> None:
    """OUT/active_queries.png: accuracy after k random and k active questions, the oracle dashed."""
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    for name, style in (("random", dict(marker="o")), ("active", dict(marker="s"))):
        ax.plot(budgets, [mean[name][str(k)] for k in budgets], label=f"{name} questions", **style)
    ax.axhline(oracle, color="black", linestyle="--", label="oracle")
    ax.set_xscale("log", base=2)
    ax.set_xticks(budgets)
    ax.set_xticklabels([str(k) for k in budgets])
    ax.set_xlabel("answers of the new user (k)")
    ax.set_ylabel("accuracy on query pairs")
    ax.set_title(f"{method} on {benchmark}: active vs random questions", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, f"{out}/active_queries.png")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="vpl", choices=["vpl", "pal-a", "pal-b", "maxmin", "micro", "gpm"])
    parser.add_argument("--benchmark", default="attributes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budgets", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--set", dest="changes", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/active_queries[_METHOD]")
    parser.add_argument("--render", default=None, metavar="FOLDER",
                        help="write FOLDER/results.md again from its results.json, fitting nothing")
    args = parser.parse_args(argv)
    if args.render:
        record = json.loads((Path(args.render) / "results.json").read_text())
        runs = {int(s): r for s, r in record["runs"].items()}
        budgets = [int(k) for k in record["mean"]["random"]]
        text = report(record["method"], record["benchmark"], runs, budgets, record["mean"], record["oracle"],
                      draws=record.get("draws"))
        write_text(f"{args.render}/results.md", text)
        plot(record["method"], record["benchmark"], record["mean"], record["oracle"], budgets, args.render)
        print(text)
        return {"mean": record["mean"], "oracle": record["oracle"]}
    args.out = args.out or "benchmarks/results/active_queries" + ("" if args.method == "vpl" else f"_{args.method}")
    torch.manual_seed(0)
    runs = {seed: run_seed(args.method, args.benchmark, seed, args.budgets, args.draws, parse_overrides(args.changes))
            for seed in args.seeds}
    mean = {name: {str(k): float(np.mean([runs[s][name][str(k)] for s in args.seeds])) for k in args.budgets}
            for name in ("random", "active")}
    oracle = float(np.mean([runs[s]["oracle"] for s in args.seeds]))
    text = report(args.method, args.benchmark, runs, args.budgets, mean, oracle, args.draws)
    write_json(f"{args.out}/results.json", {"method": args.method, "benchmark": args.benchmark, "seeds": args.seeds,
                                            "changes": args.changes, "draws": args.draws,
                                            "mean": mean, "oracle": oracle, "runs": {str(s): r for s, r in runs.items()}})
    write_text(f"{args.out}/results.md", text)
    plot(args.method, args.benchmark, mean, oracle, args.budgets, args.out)
    print(text)
    return {"mean": mean, "oracle": oracle}


if __name__ == "__main__":
    main()
