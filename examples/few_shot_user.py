"""Few-shot: infer an unseen user's vector from k labelled pairs, then score new pairs for them.

    python examples/few_shot_user.py [--data ideal-points] [--method pal-a] [--shots 8]
"""

from __future__ import annotations

import argparse


from pluralign.config import build_model, preset
from pluralign.eval.bench import benchmark_data


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="ideal-points")
    parser.add_argument("--method", default="pal-a")
    parser.add_argument("--shots", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    if args.shots < 0:
        parser.error(f"--shots {args.shots}: must be non-negative")
    train, test = benchmark_data(args.data)
    config = preset(args.method) | ({"epochs": args.epochs} if args.epochs else {})
    model = build_model(args.method, config).fit(train, progress=False)

    new_user = next(r["user_id"] for r in test.rows if r.get("role") == "query")
    context = test.subset(lambda r: r.get("user_id") == new_user and r.get("role") == "context")
    queries = test.subset(lambda r: r.get("user_id") == new_user and r.get("role") == "query")
    shots = min(args.shots, len(context))  # a user has as many context pairs as the benchmark gave (16 shipped)
    user = model.infer_user(context.subset(range(shots)))  # no labels of the queries are used
    p = model.pair_proba(queries, user=user)
    accuracy = float((p > 0.5).float().mean())
    if shots < args.shots:
        print(f"user {new_user} has {len(context)} context pairs: adapting on all of them, not {args.shots}")
    print(f"{args.method}: user {new_user} from {user.n_pairs} pairs -> vector {user.mean[:4].tolist()}..., "
          f"accuracy on their {len(queries)} query pairs {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    main()
