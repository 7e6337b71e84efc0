"""Issue 4's MaxMin targets on `majority-minority` (10:1), measured over seeds with intervals.

    python benchmarks/minority_groups.py [--seeds 0 1 2] [--jobs 2] [--out benchmarks/results/minority_groups]

For each seed it fits BT and MaxMin (their shipped presets, seeded) on the benchmark's training rows and reports:

1. whether MaxMin's EM found the groups: scikit-learn's adjusted Rand index of its assignment of the training
   users against their true group (target: at least 0.9);
2. each method's accuracy on the seen minority users' held-out rows, and MaxMin − BT on those same rows with a
   95% interval clustered by user (target: at least 20 points). The minority is 3 users a seed, so the interval
   takes Student's t on C − 1 degrees of freedom for the C minority users of all seeds, not the normal 1.96;
3. each method's worst group on the seen users' held-out rows.

Writes results.md and results.json.
"""

from __future__ import annotations

import argparse
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from pluralign.config import build_model, preset
from pluralign.eval.bench import benchmark_data, one_thread
from pluralign.eval.compare import paired_difference
from pluralign.eval.metrics import hits, interval_quantile
from pluralign.eval.protocol import score_rows
from pluralign.io import write_json, write_text

BENCHMARK, METHODS = "majority-minority", ("bt", "maxmin")


def seen_hits(method: str, seed: int) -> dict:
    """One fit's hits on the seen users' held-out rows (with their user, group and the oracle's hit), and, for
    MaxMin, its EM's group recovery."""
    train, test = benchmark_data(BENCHMARK, seed)
    model = build_model(method, preset(method), seed=seed).fit(train, progress=False)
    rows, p = score_rows(model, test, 0)
    seen = [i for i, role in enumerate(test.column("role")) if role is None]
    p = dict(zip(rows.tolist(), p))
    columns = {name: test.column(name) for name in ("user_id", "group", "oracle_p")}
    return {"user": [f"{seed}/{columns['user_id'][i]}" for i in seen],  # seeds draw their own users
            "group": [columns["group"][i] for i in seen],
            "hit": hits(np.array([p[i] for i in seen])).tolist(),
            "oracle_hit": hits(np.array([columns["oracle_p"][i] for i in seen])).tolist(),
            "group_recovery": model.fit_stats_.get("group_recovery")}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/minority_groups")
    args = parser.parse_args(argv)
    cells = [(method, seed) for seed in args.seeds for method in METHODS]
    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=torch.set_num_threads, initargs=(1,)) as pool:  # a thread a fit
            fits = dict(zip(cells, pool.map(seen_hits, *zip(*cells))))
    else:
        with one_thread():  # the workers' figures
            fits = {cell: seen_hits(*cell) for cell in cells}

    def pooled(method: str, key: str = "hit", group: str | None = None) -> tuple[np.ndarray, list]:
        keep = [(h, u) for seed in args.seeds for h, u, g in
                zip(fits[method, seed][key], fits[method, seed]["user"], fits[method, seed]["group"])
                if group is None or g == group]
        return np.array([h for h, _ in keep]), [u for _, u in keep]

    lines = ["| seed | EM's adjusted Rand index | minority: bt | minority: maxmin | oracle | worst group: bt | "
             "worst group: maxmin |", "|---|---|---|---|---|---|---|"]
    per_seed = {}
    for seed in args.seeds:
        accuracy = {}
        for method in METHODS:
            fit = fits[method, seed]
            by_group = {g: float(np.mean([h for h, gg in zip(fit["hit"], fit["group"]) if gg == g]))
                        for g in sorted(set(fit["group"]))}
            accuracy[method] = {"groups": by_group, "worst_group": min(by_group, key=by_group.get)}
        oracle = fits["bt", seed]
        minority_oracle = float(np.mean([h for h, g in zip(oracle["oracle_hit"], oracle["group"]) if g == "minority"]))
        recovery = fits["maxmin", seed]["group_recovery"]
        per_seed[seed] = {**accuracy, "oracle_minority": minority_oracle, "group_recovery": recovery}
        worst = {m: f"{a['worst_group']} {a['groups'][a['worst_group']]:.3f}" for m, a in accuracy.items()}
        lines.append(f"| {seed} | {recovery['adjusted_rand']:.2f} | {accuracy['bt']['groups']['minority']:.3f} | "
                     f"{accuracy['maxmin']['groups']['minority']:.3f} | {minority_oracle:.3f} | {worst['bt']} | "
                     f"{worst['maxmin']} |")

    (maxmin, users), (bt, _) = pooled("maxmin", group="minority"), pooled("bt", group="minority")
    difference = paired_difference(maxmin, bt, users)
    clusters = difference["users"]
    quantile = interval_quantile(difference["se_df"]) if "se_df" in difference else float("nan")
    half_width = quantile * difference.get("difference_se", float("nan"))
    ari = [per_seed[s]["group_recovery"]["adjusted_rand"] for s in args.seeds]
    summary = (f"\nOver seeds {', '.join(map(str, args.seeds))}: EM's adjusted Rand index {min(ari):.2f} at worst "
               f"(target ≥ 0.9). On the minority's held-out rows ({difference['n']} rows of {clusters} users), BT "
               f"{difference['accuracy_b']:.3f}, MaxMin {difference['accuracy_a']:.3f}: MaxMin − BT "
               f"{100 * difference['difference']:+.1f} ± {100 * half_width:.1f} points (95%, clustered by user, "
               f"t on {clusters - 1} df = {quantile:.2f}; target ≥ +20).\n")
    write_json(f"{args.out}/results.json", {"benchmark": BENCHMARK, "seeds": args.seeds, "per_seed": per_seed,
                                            "minority_difference": {**difference, "t_quantile": quantile,
                                                                    "half_width": half_width}})
    write_text(f"{args.out}/results.md", "\n".join(lines) + "\n" + summary)
    print("\n".join(lines) + summary)
    return {"per_seed": per_seed, "minority_difference": difference, "half_width": half_width}


if __name__ == "__main__":
    main()
