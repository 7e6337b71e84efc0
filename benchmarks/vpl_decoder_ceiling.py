"""VPL's decoder with a perfect encoder on `attributes`: how well r(x, y, z) = MLP([x, y, z]) fits when z is
the user's true type.

    python benchmarks/vpl_decoder_ceiling.py [--seeds 0 1 2] [--hidden 64,64 256,256] [--lr 0.003]
        [--out benchmarks/results/vpl_decoder_ceiling.json]

A BT reward on the response embedding concatenated with the one-hot of the user's type *is* VPL's decoder
fed the true latent: MLP([φ(x), φ(y), onehot(type)]). Fitted with VPL's decoder widths on the frozen
MiniLM embeddings, its seen-user accuracy bounds what any VPL encoder can reach with that decoder and
those features (the encoder can only do worse than the truth). Figures: seen users, oracle on the same rows.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from pluralign.backbones import TextEncoder  # noqa: E402
from pluralign.config import build_model, preset  # noqa: E402
from pluralign.data.cache import EmbeddingCache  # noqa: E402
from pluralign.data.contract import PreferenceSet  # noqa: E402
from pluralign.data.synthetic import build_benchmark  # noqa: E402
from pluralign.eval import evaluate  # noqa: E402
from pluralign.io import write_json  # noqa: E402


def with_true_type(rows: list[dict], embedding: dict[str, torch.Tensor], types: list[str]) -> list[dict]:
    """Rows whose response embeddings carry the one-hot of the user's type (the decoder's true z)."""
    eye = torch.eye(len(types))
    return [{**r, "prompt_embedding": embedding[r["prompt"]].tolist(),
             "chosen_embedding": torch.cat([embedding[r["chosen"]], eye[types.index(r["group"])]]).tolist(),
             "rejected_embedding": torch.cat([embedding[r["rejected"]], eye[types.index(r["group"])]]).tolist()}
            for r in rows]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--hidden", nargs="+", default=["64,64", "256,256"],
                        help="decoder widths to try, comma-separated (VPL's preset: 64,64)")
    parser.add_argument("--lr", type=float, default=3e-3, help="VPL's preset learning rate")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default="benchmarks/results/vpl_decoder_ceiling.json")
    args = parser.parse_args(argv)
    encoder, cache = TextEncoder(), EmbeddingCache(None)
    record: dict = {"seeds": args.seeds, "lr": args.lr, "epochs": args.epochs, "runs": {}}
    for widths in args.hidden:
        hidden = [int(w) for w in widths.split(",") if w]
        seen = []
        for seed in args.seeds:
            bench = build_benchmark("attributes", seed=seed)
            types = sorted({r["group"] for r in bench.train})
            texts = sorted({t for r in bench.train + bench.test for t in (r["prompt"], r["chosen"], r["rejected"])})
            embedding = dict(zip(texts, cache.embed(texts, encoder)))
            config = {**preset("bt"), "hidden": hidden, "lr": args.lr, "epochs": args.epochs, "seed": seed}
            model = build_model("bt", config).fit(
                PreferenceSet.from_rows(with_true_type(bench.train, embedding, types)), progress=False)
            held_out = [r for r in bench.test if not r.get("role")]  # seen users' held-out pairs
            report = evaluate(model, PreferenceSet.from_rows(with_true_type(held_out, embedding, types)), shots=(0,))
            seen.append([round(report["seen"]["accuracy"], 4), round(report["seen"]["oracle_accuracy"], 4)])
        record["runs"][widths] = {"seen": seen, "mean": np.round(np.mean(seen, 0), 4).tolist()}
        print(widths, json.dumps(record["runs"][widths]), flush=True)
    write_json(args.out, record)
    return record


if __name__ == "__main__":
    main()
