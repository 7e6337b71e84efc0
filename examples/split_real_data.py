"""Real data, few-shot protocol: split a pooled file by user, fit, and evaluate on held-out users.

    python examples/split_real_data.py FILE.jsonl [--method vpl] [--unseen-users 10] [--context 16]
        [--hold-out-prompts] [--out runs/example]

FILE is any preference file with a user_id column, e.g. the output of `pluralign data convert prism ...`.
Without FILE the example pools the train rows of the `pets` benchmark into one file first, standing in for a
converted dataset (its oracle columns are kept, so the report also shows the gap to the oracle). Where users
label the same pairs, ``--hold-out-prompts`` keeps the test's prompts out of training (the split says how many
test pairs training holds).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pluralign.config import build_model, preset
from pluralign.data import read_preferences
from pluralign.data.split import split_by_user
from pluralign.eval import evaluate
from pluralign.eval.bench import benchmark_data
from pluralign.io import write_jsonl


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?")
    parser.add_argument("--method", default="vpl")
    parser.add_argument("--unseen-users", dest="unseen_users", type=int, default=6)
    parser.add_argument("--context", type=int, default=16, help="each unseen user's context pairs")
    parser.add_argument("--hold-out-prompts", dest="hold_out_prompts", action="store_true",
                        help="hold out a fifth of the prompts too (unseen users' queries are on them)")
    parser.add_argument("--data", default="pets", help="the benchmark pooled when no FILE is given")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", default="runs/split-example")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.file is None:  # a stand-in for a converted dataset: every user's pairs in one file
        args.file = str(out / "pooled.jsonl")
        write_jsonl(args.file, benchmark_data(args.data)[0].rows)

    split = split_by_user(read_preferences(args.file), unseen_users=args.unseen_users, n_context=args.context, seed=0,
                          hold_out_prompts=args.hold_out_prompts)
    trained, queries = split.pairs_in_training()["query"]
    print(f"{trained} of {queries} query pairs were labelled in training (by other users)")
    config = preset(args.method) | ({"epochs": args.epochs} if args.epochs else {})
    model = build_model(args.method, config).fit(split.train, progress=False)
    report = evaluate(model, split.test, shots=sorted({0, *(k for k in (4, 8, 16) if k <= args.context)}))
    print(f"{args.method}: {len(split.seen_users)} seen users, seen-user accuracy {report['seen']['accuracy']:.3f}")
    for k, entry in report["unseen"].items():
        print(f"  {len(split.unseen_users)} unseen users, k = {k:>2}: accuracy {entry['accuracy']:.3f}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
