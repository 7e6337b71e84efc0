"""Best-of-N with a personalized reward: pick, among N responses, the one a new user prefers.

    python examples/personalized_best_of_n.py [--data pets] [--method vpl] [--n 4] [--shots 8] [--rounds 20]

Generation is conditioned on a user vector at its simplest: sample N responses, keep the one the user's
reward ranks first. For each unseen user of a benchmark with user types (pets, attributes,
majority-minority), ``--rounds`` times, N distinct test responses to one prompt are drawn and four selectors
pick one: at random; by one reward for everybody (BT); by the method's reward for the user, inferred from
their first k context pairs (no other label of theirs is used); by MaxMin's egalitarian score (the worst-off
group's reward: fair to every group, personal to none). The benchmark's true reward for the user's type
scores each pick: how often it is the user's favourite of the N, and the regret, how far its true reward
falls below the favourite's (in the generator's logits: 1.0 is odds of e to 1 that the user prefers the
favourite).
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from pluralign.config import build_model, parse_overrides, preset
from pluralign.data import PreferenceSet
from pluralign.data.synthetic import build_benchmark

SIDES = ("chosen", "rejected")


def responses_by_prompt(rows: list[dict]) -> dict[str, list[dict]]:
    """Every distinct response of the rows, by prompt: its text and its columns (``_attributes``, ...)."""
    by_prompt: dict[str, dict[str, dict]] = defaultdict(dict)
    for row in rows:
        for side in SIDES:
            response = {key.removeprefix(side): value for key, value in row.items() if key.startswith(side)}
            by_prompt[row["prompt"]].setdefault(response[""], response)
    return {prompt: list(responses.values()) for prompt, responses in by_prompt.items()}


def true_rewards(bench, user_type: int, prompt: str, candidates: list[dict]) -> np.ndarray:
    """The generator's reward of each candidate for the type, up to a constant: its logit against the first."""
    rows = [{"prompt": prompt, **{f"chosen{k}": v for k, v in c.items()},
             **{f"rejected{k}": v for k, v in candidates[0].items()}} for c in candidates]
    return bench.prior.logits(bench.prior.params[[user_type]], rows)[0]


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="pets", choices=["pets", "attributes", "majority-minority"])
    parser.add_argument("--method", default="vpl", help="a method with a scalar reward (not gpm)")
    parser.add_argument("--n", type=int, default=4, help="candidates per draw")
    parser.add_argument("--shots", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=20, help="draws of N candidates per unseen user")
    parser.add_argument("--epochs", type=int, default=None, help="override every model's preset")
    parser.add_argument("--data-set", dest="data_options", action="append", default=[], metavar="KEY=VALUE",
                        help="a keyword of the benchmark's builder, e.g. n_users=8")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.method in ("gpm", "maxmin"):
        parser.error(f"--method {args.method}: needs a personal scalar reward (GPM has none; MaxMin is the "
                     "egalitarian selector already)")
    bench = build_benchmark(args.data, seed=args.seed, **parse_overrides(args.data_options))
    train, test = PreferenceSet.from_rows(bench.train, "train"), PreferenceSet.from_rows(bench.test, "test")
    epochs = {"epochs": args.epochs} if args.epochs else {}
    models = {name: build_model(name, {**preset(name), "seed": args.seed, **epochs}).fit(train, progress=False)
              for name in dict.fromkeys(["bt", args.method, "maxmin"])}

    models["bt"].featurize(test)  # every candidate's text embedded once, in one batch (the models share the cache)
    pool = {p: r for p, r in responses_by_prompt(bench.test).items() if len(r) >= args.n}
    prompts = sorted(pool)
    unseen = sorted({r["user_id"]: r["group"] for r in bench.test if r.get("role") == "query"}.items())
    rng = np.random.default_rng(args.seed)
    personal = f"{args.method}, user from {args.shots} pairs"
    picks: dict[str, list[tuple[str, bool, float]]] = defaultdict(list)  # selector -> (group, best?, regret)
    for user_id, group in unseen:
        context = test.subset(lambda r: r.get("user_id") == user_id and r.get("role") == "context")
        user = models[args.method].infer_user(context.subset(range(min(args.shots, len(context)))))
        user_type = bench.prior.names.index(group)
        for _ in range(args.rounds):
            prompt = prompts[rng.integers(len(prompts))]
            candidates = [pool[prompt][i] for i in rng.choice(len(pool[prompt]), args.n, replace=False)]
            texts = [c[""] for c in candidates]
            reward = true_rewards(bench, user_type, prompt, candidates)
            chosen = {
                "random": int(rng.integers(args.n)),
                "bt (one reward)": int(models["bt"].score(prompt, texts).argmax()),
                personal: int(models[args.method].score(prompt, texts, user=user).argmax()),
                "maxmin (worst-off group)": models["maxmin"].best_of_n(prompt, texts).index,
            }
            for selector, index in chosen.items():
                picks[selector].append((group, reward[index] == reward.max(), float(reward.max() - reward[index])))

    groups = sorted({g for _, g in unseen})
    results = {}
    print(f"{args.data}: {len(unseen)} unseen users x {args.rounds} draws of {args.n} responses")
    print(f"{'selector':<30} {'favourite':>9} {'regret':>7}   favourite / regret by group ({', '.join(groups)})")
    for selector, rows in picks.items():
        best = np.array([b for _, b, _ in rows], dtype=float)
        regret = np.array([r for _, _, r in rows])
        in_group = {g: np.array([grp == g for grp, _, _ in rows]) for g in groups}
        by_group = {g: {"favourite": float(best[m].mean()), "regret": float(regret[m].mean())}
                    for g, m in in_group.items()}
        results[selector] = {"favourite": float(best.mean()), "regret": float(regret.mean()), **by_group}
        print(f"{selector:<30} {best.mean():>9.3f} {regret.mean():>7.2f}   "
              + "  ".join(f"{by_group[g]['favourite']:.3f} / {by_group[g]['regret']:.2f}" for g in groups))
    return results


if __name__ == "__main__":
    main()
