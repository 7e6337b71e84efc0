"""Active questions: ask a new user the pairs whose answers tell most about them, one at a time.

    python examples/ask_a_new_user.py [--data ideal-points] [--method pal-b] [--questions 4]

The new user's context pairs stand in for a pool of unlabelled candidate pairs (their stored order is hidden:
each pair is shown as (a, b) with a coin deciding which comes first). The model asks for the pair of largest
expected information gain given the answers so far (``model.next_query``), the user answers (here: the
answer the benchmark's user gave), and after ``--questions`` answers the user's vector scores their query
pairs. For comparison, the same number of pairs taken in the file's order.
"""

from __future__ import annotations

import argparse
import random


from pluralign.config import build_model, preset
from pluralign.eval.bench import benchmark_data


def swapped(row: dict) -> dict:
    """The pair shown the other way round (text or embedding columns alike)."""
    out = dict(row)
    for a, b in (("chosen", "rejected"), ("chosen_embedding", "rejected_embedding")):
        if a in row:
            out[a], out[b] = row[b], row[a]
    return out


def accuracy(model, answered: list[dict], queries) -> float:
    p = model.pair_proba(queries, user=model.infer_user(answered))
    return float((p > 0.5).float().mean())


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="ideal-points")
    parser.add_argument("--method", default="pal-b", help="any method but bt (which has no user to ask about)")
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    train, test = benchmark_data(args.data)
    config = preset(args.method) | ({"epochs": args.epochs} if args.epochs else {})
    model = build_model(args.method, config).fit(train, progress=False)

    new_user = next(r["user_id"] for r in test.rows if r.get("role") == "query")
    context = [r for r in test.rows if r["user_id"] == new_user and r.get("role") == "context"]
    queries = test.subset(lambda r: r["user_id"] == new_user and r.get("role") == "query")
    coin = random.Random(0)
    # the pool as the user would see it: a and b, the answer unknown to the model until asked
    pool = [swapped(row) if coin.random() < 0.5 else dict(row) for row in context]
    waiting = list(range(len(context)))  # which context row each pool entry shows
    answered: list[dict] = []
    while len(answered) < args.questions and pool:
        pick = model.next_query(pool, context=answered or None)
        pool.pop(pick)
        answered.append(context[waiting.pop(pick)])  # the user's answer: chosen ≻ rejected
        print(f"question {len(answered)}: context pair {context.index(answered[-1])} of {len(context)}")
    chosen, given = accuracy(model, answered, queries), accuracy(model, context[: args.questions], queries)
    print(f"{args.method}, user {new_user}, {len(answered)} answers: accuracy on their {len(queries)} query pairs "
          f"{chosen:.3f} with the questions it chose, {given:.3f} with the file's first {args.questions}")
    return {"chosen": chosen, "given": given}


if __name__ == "__main__":
    main()
