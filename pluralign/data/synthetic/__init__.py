"""Synthetic preference benchmarks with an oracle, deterministic by seed.

Each benchmark knows the true P(chosen > rejected) of every row's user (``oracle_p``), samples its labels
from it, and holds out unseen users for the few-shot protocol (see ``_common``). Text benchmarks read the
shipped banks in ``pluralign/data/text_banks`` (built by ``data/build_text_banks.py``); feature benchmarks
emit embeddings directly.

    >>> from pluralign.data.synthetic import build_benchmark
    >>> bench = build_benchmark("pets", seed=0, n_users=4)
    >>> bench.write("out/pets")          # train.jsonl, test.jsonl, README.md
"""

from __future__ import annotations

import inspect
from typing import Callable, Iterable

from pluralign.data.contract import DataError
from pluralign.data.synthetic import attributes, cyclic, dirichlet_mixture, ideal_points, majority_minority, pets
from pluralign.data.synthetic._common import Benchmark

BENCHMARKS: dict[str, Callable[..., Benchmark]] = {
    "pets": pets.build,
    "attributes": attributes.build,
    "ideal-points": ideal_points.build,
    "majority-minority": majority_minority.build,
    "cyclic": cyclic.build,
    "dirichlet-mixture": dirichlet_mixture.build,
}


def builder_options(name: str) -> dict[str, object]:
    """Benchmark ``name``'s builder keywords (``--set`` / ``--data-set``) and their defaults, the seed aside."""
    return {p.name: p.default for p in inspect.signature(BENCHMARKS[name]).parameters.values() if p.name != "seed"}


def check_options(name: str, options: Iterable[str]) -> None:
    """A one-line error unless benchmark ``name`` exists and its builder takes every keyword in ``options``."""
    if name not in BENCHMARKS:
        raise DataError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    params = list(builder_options(name))
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise DataError(
            f"benchmark {name!r} has no option {', '.join(map(repr, unknown))}; options: {', '.join(params)}")


def build_benchmark(name: str, seed: int = 0, **sizes) -> Benchmark:
    """Build benchmark ``name``; ``sizes`` are the build function's keywords (n_users, pairs_per_user, ...)."""
    check_options(name, sizes)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    return BENCHMARKS[name](seed=seed, **sizes)


__all__ = ["BENCHMARKS", "Benchmark", "build_benchmark", "check_options"]
