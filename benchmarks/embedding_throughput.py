"""Embedding throughput of the default backbone on the default data, without and with the cache.

    python benchmarks/embedding_throughput.py [--data pets] [--out benchmarks/results/embedding_DATA.json]

Without cache: every unique text of the benchmark is embedded into a fresh, empty cache.
With cache: the same texts again, through a new cache object over the same folder (as a second run
would), which must embed nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pluralign.backbones import TextEncoder  # noqa: E402
from pluralign.data.cache import EmbeddingCache  # noqa: E402
from pluralign.data.synthetic import build_benchmark  # noqa: E402
from pluralign.io import write_json  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="pets")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/embedding_DATA.json (shipped: pets, "
                                                   "attributes)")
    args = parser.parse_args()
    bench = build_benchmark(args.data)
    rows = bench.train + bench.test
    texts = [r.get(c, "") for r in rows for c in ("prompt", "chosen", "rejected")]
    unique = len(set(texts))
    encoder = TextEncoder()
    encoder.encode(["warm up"])  # load weights outside the timing
    with tempfile.TemporaryDirectory() as folder:
        cold = EmbeddingCache(folder)
        start = time.perf_counter()
        cold.embed(texts, encoder)
        cold_seconds = time.perf_counter() - start
        warm = EmbeddingCache(folder)
        start = time.perf_counter()
        warm.embed(texts, encoder)
        warm_seconds = time.perf_counter() - start
    result = {
        "data": args.data,
        "texts": len(texts),
        "unique_texts": unique,
        "no_cache": {"seconds": round(cold_seconds, 2), "texts_per_second": round(unique / cold_seconds, 1)},
        "cache": {"seconds": round(warm_seconds, 3), "texts_per_second": round(len(texts) / warm_seconds, 1),
                  "embedded": warm.misses},
        "threads": int(os.environ.get("OMP_NUM_THREADS", 0)) or None,
    }
    write_json(args.out or f"benchmarks/results/embedding_{args.data}.json", result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
