"""Shared fixtures: offline environment, a per-session embedding cache, tiny preference data."""

from __future__ import annotations

import importlib.util
import math
import os
import random
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[_var] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)

BENCHMARKS_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="session", autouse=True)
def _embedding_cache(tmp_path_factory):
    os.environ["PLURALIGN_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def benchmark_script():
    """Load benchmarks/NAME.py as a module (the folder is scripts, not a package)."""
    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS_DIR / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load


def two_group_rows(n_users: int = 6, pairs: int = 60, dim: int = 4, seed: int = 0,
                   unseen: int = 2, context: int = 16, queries: int = 20) -> tuple[list[dict], list[dict]]:
    """Embedding rows: group A prefers a high first feature, group B a low one (opposed users);
    returns (train, test) with held-out seen rows and unseen users' context/query rows."""
    rng = random.Random(seed)

    def pair(user: str, group: str, role: str | None = None) -> dict:
        a = [rng.gauss(0, 1) for _ in range(dim)]
        b = [rng.gauss(0, 1) for _ in range(dim)]
        sign = 1.0 if group == "a" else -1.0
        p = 1 / (1 + math.exp(-3.0 * sign * (a[0] - b[0])))
        if rng.random() > p:
            a, b, p = b, a, 1 - p
        row = {"chosen_embedding": a, "rejected_embedding": b, "user_id": user, "group": group,
               "oracle_p": p, "controversial": True}
        if role:
            row["role"] = role
        return row

    train, test = [], []
    for u in range(n_users):
        group = "a" if u % 3 else "b"  # 2:1 majority
        train += [pair(f"u{u}", group) for _ in range(pairs)]
        test += [pair(f"u{u}", group) for _ in range(pairs // 4)]
    for u in range(unseen):
        group = "a" if u % 2 else "b"
        test += [pair(f"new{u}", group, "context") for _ in range(context)]
        test += [pair(f"new{u}", group, "query") for _ in range(queries)]
    return train, test


@pytest.fixture
def tiny_data():
    return two_group_rows()


class StandInEncoder:
    """Stands in for a backbone in cache and featurize tests: a text's vector is its length and its first
    character's code (0 for the empty prompt); it remembers what it was asked to encode."""

    identity = "stand-in-test-encoder"
    dim = 2

    def __init__(self) -> None:
        self.encoded: list[str] = []

    @staticmethod
    def vectors(texts: list[str]) -> torch.Tensor:
        return torch.tensor([[float(len(t)), float(ord(t[0])) if t else 0.0] for t in texts])

    def encode(self, texts, progress=False):
        self.encoded += texts
        return self.vectors(texts)

    def encode_batches(self, texts, progress=False):
        for i, text in enumerate(texts):  # a batch of one text: the cache's shards can be cut anywhere
            yield [i], self.encode([text], progress)
