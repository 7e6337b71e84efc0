"""``pluralign bench`` on one benchmark built with non-default options (any keyword of its builder).

    python benchmarks/bench_variant.py attributes --set prompt_hints=0.5 --methods bt micro pal-a vpl \
        [--seed 0] [--out benchmarks/results/attributes-prompt_hints-0.5]

Writes results.md, results.json and few_shot.png like ``pluralign bench``.
"""

from __future__ import annotations

import argparse
import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pluralign.config import parse_overrides  # noqa: E402
from pluralign.eval.bench import benchmark_ceiling, benchmark_data, run_bench  # noqa: E402
from pluralign.methods import METHODS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark")
    parser.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    try:
        options = parse_overrides(args.options)
    except ValueError as err:
        parser.error(str(err))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    suffix = "-".join(f"{k}-{v}" for k, v in options.items()) or "default"
    out = args.out or f"benchmarks/results/{args.benchmark}-{suffix}"
    run_bench(args.methods, {args.benchmark: benchmark_data(args.benchmark, args.seed, **options)}, out, seed=args.seed,
              ceilings={args.benchmark: benchmark_ceiling(args.benchmark, args.seed, **options)})
    print(open(f"{out}/results.md").read())


if __name__ == "__main__":
    main()
