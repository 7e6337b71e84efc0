"""``pluralign bench`` on one benchmark built with non-default options (any keyword of its builder).

    python benchmarks/bench_variant.py attributes --set prompt_hints=0.5 --methods bt micro pal-a vpl \
        [--seeds 0 1 2] [--jobs 2] [--out benchmarks/results/attributes-prompt_hints-0.5]

Writes results.md, results.json and few_shot.png like ``pluralign bench`` (with several seeds: their mean ± sd,
and each seed's in ``seed-N/``).
"""

from __future__ import annotations

import argparse
import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pluralign.config import parse_overrides  # noqa: E402
from pluralign.eval.bench import run_bench_seeds  # noqa: E402
from pluralign.methods import METHODS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark")
    parser.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                        help="a keyword of the benchmark's builder, e.g. balanced_splits=true")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--jobs", type=int, default=1, help="worker processes of one thread each")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    try:
        options = parse_overrides(args.options)
    except ValueError as err:
        parser.error(str(err))
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    context = options.pop("context", "random")
    suffix = "-".join(f"{k}-{v}" for k, v in {**options, **({"context": context} if context != "random" else {})}.items())
    out = args.out or f"benchmarks/results/{args.benchmark}-{suffix or 'default'}"
    run_bench_seeds(args.methods, [args.benchmark], out, seeds=args.seeds, context=context, jobs=args.jobs,
                    data_options=options)
    print(open(f"{out}/results.md").read())


if __name__ == "__main__":
    main()
