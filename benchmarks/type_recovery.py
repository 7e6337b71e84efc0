"""Does k pairs put a new user at their own type? Type recovery of every method, against the Bayes classifier.

    python benchmarks/type_recovery.py [--benchmark attributes] [--seeds 0 1 2] [--shots 8] [--jobs 2]
        [--cells vpl:readout=mean pal-a pal-a:k=4 pal-b gpm maxmin maxmin:n_groups=4]
        [--out benchmarks/results/type_recovery]

A cell is a method with its shipped preset, and after ``:`` comma-separated overrides. For each seed it fits
the cell on the benchmark's training rows, then counts the unseen users whose vector inferred from their
first k context pairs lies nearest to the centroid of the seen users of their own group
(:func:`pluralign.eval.user_map.type_recovery`). The reference row is the Bayes classifier that knows the
generator: the most likely true type given the same k pairs (a tie counts as a share of a hit). VPL's cell
reads out the encoder's posterior mean (``readout=mean``): the preset's training-user readout would place
each user at training users' latents, which says less about the encoder. Writes results.md and results.json.
"""

from __future__ import annotations

import argparse
import multiprocessing
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from pluralign.config import build_model, parse_overrides, preset
from pluralign.data import PreferenceSet
from pluralign.data.synthetic import build_benchmark
from pluralign.eval.ceiling import log_posterior
from pluralign.eval.user_map import type_recovery, user_vectors
from pluralign.io import write_json, write_text


def cell_recovery(cell: str, benchmark: str, seed: int, shots: int) -> float | None:
    torch.set_num_threads(1)
    method, _, changes = cell.partition(":")
    bench = build_benchmark(benchmark, seed=seed)
    model = build_model(method, preset(method), seed=seed, **parse_overrides([c for c in changes.split(",") if c]))
    model.fit(PreferenceSet.from_rows(bench.train), progress=False)
    return type_recovery(user_vectors(model, PreferenceSet.from_rows(bench.test), shots))


def bayes_recovery(benchmark: str, seed: int, shots: int) -> float:
    """Share of unseen users whose most likely type (the generator's, from k pairs) is their own group."""
    bench = build_benchmark(benchmark, seed=seed)
    names = bench.prior.names if bench.prior is not None else None
    if names is None:
        raise ValueError(f"{benchmark}: its users are not a finite set of named types")
    contexts, group = defaultdict(list), {}
    for row in bench.test:
        if row.get("role") == "context":
            contexts[row["user_id"]].append(row)
            group[row["user_id"]] = row["group"]
    hits = []
    for user, rows in contexts.items():
        log_post = log_posterior(bench.prior, rows[:shots])
        best = np.flatnonzero(log_post == log_post.max())
        hits.append(np.mean([names[i] == group[user] for i in best]))
    return float(np.mean(hits))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", default="attributes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--shots", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--cells", nargs="+",
                        default=["vpl:readout=mean", "pal-a", "pal-a:k=4", "pal-b", "gpm", "maxmin", "maxmin:n_groups=4"])
    parser.add_argument("--out", default="benchmarks/results/type_recovery")
    args = parser.parse_args(argv)
    if args.shots < 1:  # at k = 0 every unseen user is the population vector: no recovery to measure
        parser.error(f"--shots {args.shots}: type recovery needs at least one context pair")
    jobs = [(cell, args.benchmark, seed, args.shots) for cell in args.cells for seed in args.seeds]
    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            shares = list(pool.map(cell_recovery, *zip(*jobs)))
    else:
        shares = [cell_recovery(*job) for job in jobs]
    results = {cell: shares[i * len(args.seeds):(i + 1) * len(args.seeds)] for i, cell in enumerate(args.cells)}
    results["bayes-classifier"] = [bayes_recovery(args.benchmark, seed, args.shots) for seed in args.seeds]
    lines = [f"| {args.benchmark}, k = {args.shots} | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean |",
             "|---|" + "---|" * (len(args.seeds) + 1)]
    for cell, per_seed in results.items():
        lines.append(f"| {cell} | " + " | ".join(f"{v:.2f}" for v in per_seed) + f" | **{np.mean(per_seed):.2f}** |")
    note = ("\nShare of unseen users (12 per seed) whose inferred vector lies nearest their own group's centroid of "
            "seen users; for the Bayes classifier, whose most likely true type is their own.\n")
    write_json(f"{args.out}/results.json", {"benchmark": args.benchmark, "shots": args.shots, "seeds": args.seeds,
                                            "type_recovery": results})
    write_text(f"{args.out}/results.md", "\n".join(lines) + "\n" + note)
    print("\n".join(lines))
    return results


if __name__ == "__main__":
    main()
