"""How much pooled pairs without user ids say about `attributes`' user types: MiCRo with the true features.

    python benchmarks/pooled_identifiability.py [--seeds 0 1 2] [--contexts random survey]
        [--restarts 20] [--out benchmarks/results/pooled_identifiability.json]

MiCRo trains on pooled pairs. Each pair carries one binary label from an unknown user, so the user types
are identified only through the shape of the pooled P(chosen | pair), a sum of sigmoids. This script
measures how strong that signal is when the features are perfect, that is, each response is represented
by its true standardized attribute vector z ∈ R⁴ (the generator's own):

- per-pair negative log-likelihood of the pooled training pairs under BT (one logistic reward on z), under
  the true mixture (four one-attribute rewards at the generator's temperature, equal weights) and under
  the best 4-component mixture of logistic rewards found from ``--restarts`` random starts. The gap
  between BT and the true mixture is all the evidence the labels hold for the mixture;
- the fitted components as unit vectors over the four attributes (a recovered mixture is a permutation of
  the identity);
- pluralign's own BT and MiCRo (shipped presets, and MiCRo trained longer: ``micro-long``, 200 epochs at
  lr 0.05) fitted on rows whose embeddings are those z vectors, scored by the evaluation protocol: seen
  users and unseen users at 8 shots, oracle on the same rows.

So the MiCRo figures here are its ceiling on this benchmark: the MiniLM features it gets in ``pluralign
bench`` can only do worse.
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F

from pluralign.config import build_model, preset
from pluralign.data.contract import PreferenceSet
from pluralign.data.synthetic import build_benchmark
from pluralign.data.synthetic.attributes import TEMPERATURE, z_gaps, z_of_text
from pluralign.eval import evaluate
from pluralign.io import write_json
from pluralign.methods.common import mixture_log_likelihood, preference_nll


VARIANTS = [("bt", "bt", {}), ("micro", "micro", {}), ("micro-long", "micro", {"epochs": 200, "lr": 0.05})]


def with_true_features(rows: list[dict]) -> list[dict]:
    """The rows with each response replaced by its true attribute vector (the prompt by nothing)."""
    z = z_of_text()
    return [{**r, "chosen_embedding": z[r["chosen"]].tolist(), "rejected_embedding": z[r["rejected"]].tolist()}
            for r in rows]


def mixture_nll(gaps: torch.Tensor, weights: torch.Tensor, log_pi: torch.Tensor) -> torch.Tensor:
    """−mean log Σ_k π_k σ(w_k · Δz): the pooled likelihood of a mixture of logistic rewards (label = 1)."""
    return -mixture_log_likelihood(gaps @ weights.T, F.log_softmax(log_pi, 0)).mean()


def likelihoods(gaps: torch.Tensor, restarts: int, seed: int) -> dict:
    n_attributes = gaps.shape[1]
    true = mixture_nll(gaps, torch.eye(n_attributes) / TEMPERATURE, torch.zeros(n_attributes))
    w = torch.zeros(n_attributes, requires_grad=True)
    optimizer = torch.optim.LBFGS([w], max_iter=500)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = preference_nll(gaps @ w)
        loss.backward()
        return loss

    optimizer.step(closure)
    generator = torch.Generator().manual_seed(seed)
    best = None
    for _ in range(restarts):
        weights = torch.randn(n_attributes, n_attributes, generator=generator).requires_grad_(True)
        log_pi = torch.zeros(n_attributes, requires_grad=True)
        adam = torch.optim.Adam([weights, log_pi], lr=0.05)
        for _ in range(1500):
            adam.zero_grad()
            loss = mixture_nll(gaps, weights, log_pi)
            loss.backward()
            adam.step()
        if best is None or loss.item() < best[0]:
            best = (loss.item(), weights.detach(), torch.softmax(log_pi.detach(), 0))
    return {"nll_bt": round(closure().item(), 5), "nll_true_mixture": round(true.item(), 5),
            "nll_fitted_mixture": round(best[0], 5),
            "fitted_components": [[round(float(v), 3) for v in row] for row in F.normalize(best[1], dim=1)],
            "fitted_weights": [round(float(v), 3) for v in best[2]]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--contexts", nargs="+", default=["random", "survey"], choices=["random", "survey"])
    parser.add_argument("--restarts", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=None, help="override the presets' epochs (a smoke run)")
    parser.add_argument("--out", default="benchmarks/results/pooled_identifiability.json")
    args = parser.parse_args(argv)
    record: dict = {"seeds": args.seeds, "restarts": args.restarts, "runs": []}
    for seed in args.seeds:
        benches = {c: build_benchmark("attributes", seed=seed, context=c) for c in args.contexts}
        train = benches[args.contexts[0]].train
        gaps = torch.tensor(z_gaps(train), dtype=torch.float32)
        run = {"seed": seed, "n_pairs": len(train), **likelihoods(gaps, args.restarts, seed)}
        rows = PreferenceSet.from_rows(with_true_features(train), "attributes/train (true z)")
        for name, method, extra in VARIANTS:
            config = {**preset(method), "seed": seed, **extra, **({"epochs": args.epochs} if args.epochs else {})}
            model = build_model(method, config).fit(rows, progress=False)
            for context, bench in benches.items():
                report = evaluate(model, PreferenceSet.from_rows(with_true_features(bench.test), "test"), shots=(8,))
                run[f"{name}_{context}"] = {
                    "seen": [round(report["seen"]["accuracy"], 4), round(report["seen"]["oracle_accuracy"], 4)],
                    "unseen_k8": [round(report["unseen"]["8"]["accuracy"], 4),
                                  round(report["unseen"]["8"]["oracle_accuracy"], 4)]}
            if method == "micro":
                run[f"{name}_head_specialization"] = model.fit_stats_.get("head_specialization")
        record["runs"].append(run)
        print(json.dumps({k: v for k, v in run.items() if not k.endswith("head_specialization")}), flush=True)
    write_json(args.out, record)
    return record


if __name__ == "__main__":
    main()
