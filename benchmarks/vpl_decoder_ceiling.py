"""VPL's decoder with a perfect encoder on `attributes`: how well r(x, y, z) = MLP([x, y, z]) fits when z is
the user's true type.

    python benchmarks/vpl_decoder_ceiling.py [--seeds 0 1 2] [--hidden 64,64 256,256] [--lr 0.003]
        [--attention] [--basis] [--pooling mean|layer-mean|input-mean]
        [--out benchmarks/results/vpl_decoder_ceiling.json]

A BT reward on the response embedding concatenated with the one-hot of the user's type *is* VPL's decoder
fed the true latent: MLP([φ(x), φ(y), onehot(type)]). Fitted with VPL's decoder widths on the frozen
MiniLM embeddings, its seen-user accuracy bounds what any VPL encoder can reach with that decoder and
those features (the encoder can only do worse than the truth). Figures: seen users, oracle on the same rows.

``--attention`` adds the reference code's other decoder input (WEIRDLabUW/vpl_llm, ``use_attention_layer``):
the response vector is an attention pool of the backbone's frozen token states whose query is W_q z, so z
chooses which tokens the reward reads; then MLP([pool, z]) as before, with the first hidden width.

``--basis`` fits pluralign's other decoder, ``VPL(decoder="basis")``: r(x, y, z) = R(x, y)·[z, 1], linear in
z, for each width of ``--hidden`` (an empty width, ``""``, makes R linear in the features too).

``--pooling layer-mean`` embeds the texts with every layer's token means averaged instead of the last layer's
(:func:`pluralign.backbones.text_encoder.pool_layers`), ``--pooling input-mean`` with the embedding layer's
alone (:func:`~pluralign.backbones.text_encoder.pool_output`): how much of the gap is the features' pooling.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from pluralign.backbones import TextEncoder  # noqa: E402
from pluralign.backbones.text_encoder import load_backbone  # noqa: E402
from pluralign.config import build_model, preset  # noqa: E402
from pluralign.data.cache import EmbeddingCache  # noqa: E402
from pluralign.data.contract import PreferenceSet  # noqa: E402
from pluralign.data.synthetic import build_benchmark  # noqa: E402
from pluralign.eval import evaluate  # noqa: E402
from pluralign.io import write_json  # noqa: E402
from pluralign.methods.common import MLP, preference_nll  # noqa: E402
from pluralign.methods.vpl.network import VPLNetwork  # noqa: E402


def with_true_type(rows: list[dict], embedding: dict[str, torch.Tensor], types: list[str]) -> list[dict]:
    """Rows whose response embeddings carry the one-hot of the user's type (the decoder's true z)."""
    eye = torch.eye(len(types))
    return [{**r, "prompt_embedding": embedding[r["prompt"]].tolist(),
             "chosen_embedding": torch.cat([embedding[r["chosen"]], eye[types.index(r["group"])]]).tolist(),
             "rejected_embedding": torch.cat([embedding[r["rejected"]], eye[types.index(r["group"])]]).tolist()}
            for r in rows]


@torch.no_grad()
def token_states(texts: list[str], max_length: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen backbone's last-layer token states [N, T, D] (fp16, to fit memory) and masks [N, T]."""
    tokenizer, encoder = load_backbone(None)
    states, masks = [], []
    for i in range(0, len(texts), 64):
        batch = tokenizer(texts[i:i + 64], padding="max_length", truncation=True, max_length=max_length,
                          return_tensors="pt")
        states.append(encoder.eval()(**batch).last_hidden_state.half())
        masks.append(batch["attention_mask"].bool())
    return torch.cat(states), torch.cat(masks)


class AttentionDecoder(nn.Module):
    """r(y, z) = MLP([Σ_t softmax_t(h_t · W_q z / √D) h_t, z]): vpl_llm's attention layer, then its decoder."""

    def __init__(self, states: torch.Tensor, masks: torch.Tensor, latent_dim: int, hidden: list[int]) -> None:
        super().__init__()
        self.states, self.masks = states, masks
        self.query = nn.Linear(latent_dim, states.shape[-1])
        self.mlp = MLP(states.shape[-1] + latent_dim, hidden, 1)

    def forward(self, text: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h, mask = self.states[text].float(), self.masks[text]
        scores = (h @ self.query(z).unsqueeze(-1)).squeeze(-1) / h.shape[-1] ** 0.5
        pooled = (torch.softmax(scores.masked_fill(~mask, float("-inf")), -1).unsqueeze(-1) * h).sum(1)
        return self.mlp(torch.cat([pooled, z], -1)).squeeze(-1)


def attention_seen_accuracy(bench, states, masks, index: dict[str, int], hidden: list[int], lr: float,
                            epochs: int, seed: int) -> float:
    """Fit the attention decoder with the true one-hot type on the training pairs (BT likelihood, AdamW,
    batches of 256); the accuracy on the seen users' held-out pairs."""
    types = sorted({r["group"] for r in bench.train})

    def tensors(rows):
        z = F.one_hot(torch.tensor([types.index(r["group"]) for r in rows]), len(types)).float()
        return torch.tensor([index[r["chosen"]] for r in rows]), torch.tensor([index[r["rejected"]] for r in rows]), z

    torch.manual_seed(seed)
    decoder = AttentionDecoder(states, masks, len(types), hidden)
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=lr)
    chosen, rejected, z = tensors(bench.train)
    for _ in range(epochs):
        for batch in torch.randperm(len(chosen)).split(256):
            loss = preference_nll(decoder(chosen[batch], z[batch]) - decoder(rejected[batch], z[batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    chosen, rejected, z = tensors([r for r in bench.test if not r.get("role")])
    with torch.no_grad():
        return float(((decoder(chosen, z) - decoder(rejected, z)) > 0).float().mean())


def basis_seen_accuracy(bench, embedding: dict[str, torch.Tensor], hidden: list[int], lr: float, epochs: int,
                        seed: int) -> float:
    """VPL's basis decoder (``VPLNetwork(decoder="basis")``) fed the one-hot true type as z, fitted on the
    training pairs (BT likelihood, Adam, batches of 256); the accuracy on the seen users' held-out pairs."""
    types = sorted({r["group"] for r in bench.train})

    def tensors(rows):
        def stack(column):
            return torch.stack([embedding[r[column]] for r in rows])
        z = F.one_hot(torch.tensor([types.index(r["group"]) for r in rows]), len(types)).float()
        return stack("prompt"), stack("chosen"), stack("rejected"), z

    torch.manual_seed(seed)
    dim = next(iter(embedding.values())).shape[-1]
    network = VPLNetwork(dim, dim, 0, latent_dim=len(types), hidden=hidden, decoder="basis")
    optimizer = torch.optim.Adam(network.decoder.parameters(), lr=lr)
    prompt, chosen, rejected, z = tensors(bench.train)
    for _ in range(epochs):
        for batch in torch.randperm(len(z)).split(256):
            loss = preference_nll(network.logits(prompt[batch], chosen[batch], rejected[batch], z[batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        logits = network.logits(*tensors([r for r in bench.test if not r.get("role")]))
    return float((logits > 0).float().mean())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--hidden", nargs="+", default=["64,64", "256,256"],
                        help="decoder widths to try, comma-separated (VPL's preset: 64,64)")
    parser.add_argument("--lr", type=float, default=3e-3, help="VPL's preset learning rate")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--attention", action="store_true",
                        help="also the attention-pooled decoder input of the reference code (slow: token states)")
    parser.add_argument("--basis", action="store_true",
                        help="also VPL's basis decoder (linear in z) for each width of --hidden")
    parser.add_argument("--pooling", default="mean", choices=["mean", "layer-mean", "input-mean"],
                        help="the texts' pooling")
    parser.add_argument("--out", default="benchmarks/results/vpl_decoder_ceiling.json")
    args = parser.parse_args(argv)
    encoder, cache = TextEncoder(pooling=args.pooling), EmbeddingCache(None)
    record: dict = {"seeds": args.seeds, "lr": args.lr, "epochs": args.epochs, "pooling": args.pooling, "runs": {}}
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
    if args.basis:
        for widths in args.hidden:
            hidden = [int(w) for w in widths.split(",") if w]
            seen = []
            for seed in args.seeds:
                bench = build_benchmark("attributes", seed=seed)
                texts = sorted({t for r in bench.train + bench.test for t in (r["prompt"], r["chosen"], r["rejected"])})
                embedding = dict(zip(texts, cache.embed(texts, encoder)))
                seen.append(round(basis_seen_accuracy(bench, embedding, hidden, args.lr, args.epochs, seed), 4))
            name = f"basis:{widths or 'linear'}"
            record["runs"][name] = {"hidden": hidden, "seen": seen, "mean": round(float(np.mean(seen)), 4)}
            print(name, json.dumps(record["runs"][name]), flush=True)
    if args.attention:
        benches = {seed: build_benchmark("attributes", seed=seed) for seed in args.seeds}
        texts = sorted({t for b in benches.values() for r in b.train + b.test for t in (r["chosen"], r["rejected"])})
        states, masks = token_states(texts)
        index = {t: i for i, t in enumerate(texts)}
        hidden = [int(w) for w in args.hidden[0].split(",") if w]
        seen = [round(attention_seen_accuracy(benches[seed], states, masks, index, hidden, args.lr, args.epochs, seed), 4)
                for seed in args.seeds]
        record["runs"]["attention"] = {"hidden": hidden, "seen": seen, "mean": round(float(np.mean(seen)), 4)}
        print("attention", json.dumps(record["runs"]["attention"]), flush=True)
    write_json(args.out, record)
    return record


if __name__ == "__main__":
    main()
