"""Shared machinery of the synthetic benchmarks: users, sampled labels, row layout, splits, the card.

Every benchmark supplies its users and a ``draw`` function that returns a unit of candidate pairs (one
pair, or a whole intransitive triple) each with the TRUE probability P(a > b) for that user; this module
samples the label from that probability, puts the winner in ``chosen`` (so ``oracle_p`` < 0.5 marks a
noisy label), and lays the rows out as the data contract and the evaluation protocol expect:

- train: ``pairs_per_user`` pairs of every seen user (train-split items);
- test: ``test_pairs_per_user`` held-out pairs of every seen user (test-split items, no role), then for
  every unseen user ``n_context`` rows with role ``context`` followed by ``n_query`` rows with role
  ``query``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from pluralign.data.contract import DataError
from pluralign.eval.metrics import hits
from pluralign.io import jsonl_text, write_files

MIN_ADAPT_ROWS = 16  # the few-shot protocol scores k up to 16 context pairs


@dataclass(frozen=True)
class User:
    user_id: str
    group: str
    params: Any = None  # whatever the benchmark's oracle needs (a type, a weight vector, an ideal point)


@dataclass
class Candidate:
    """One pair before labelling: the two options (``text``/``embedding``/``attributes``) and P(a > b)."""

    a: dict
    b: dict
    p_a: float
    controversial: bool
    prompt: dict = field(default_factory=dict)  # {"prompt": str} and/or {"prompt_embedding": list}


Draw = Callable[[np.random.Generator, User, str], list[Candidate]]


@dataclass
class UserPrior:
    """The generator's prior over users, for the Bayes few-shot ceiling (:mod:`pluralign.eval.ceiling`).

    ``params`` holds one user per row (types, weight vectors or ideal points: draws of the prior, or every
    type), ``log_weights`` their log prior weights (None: equally likely) and ``logits(params, rows)`` the
    generator's logit of P(chosen ≻ rejected) for every user and row, read from the rows' own columns.
    ``names``: where the prior is a finite set of user types, the group name of each row of ``params``.
    ``prompt_log_likelihood(params, rows)``: where a row's prompt depends on its user (``attributes`` with
    ``prompt_hints``), log P(the row's prompt | user) for every user and row; a ceiling that ignored it would be
    beaten by reading the prompt.
    """

    params: np.ndarray
    logits: Callable[[np.ndarray, Sequence[dict]], np.ndarray]
    log_weights: np.ndarray | None = None
    names: tuple[str, ...] | None = None
    prompt_log_likelihood: Callable[[np.ndarray, Sequence[dict]], np.ndarray] | None = None


def prior_draws(seed: int, alpha: float, basis: np.ndarray, n: int = 50_000) -> np.ndarray:
    """``n`` Dirichlet(alpha) users ``w @ basis``, from a generator of their own (the data's stays untouched)."""
    return np.random.default_rng([seed, 1]).dirichlet([alpha] * len(basis), size=n) @ basis


@dataclass
class Benchmark:
    name: str
    train: list[dict]
    test: list[dict]
    card: str
    prior: UserPrior | None = None  # what the Bayes few-shot ceiling needs; not written to disk

    def write(self, out_dir: str | Path) -> None:
        out = Path(out_dir)
        write_files({out / "train.jsonl": jsonl_text(self.train), out / "test.jsonl": jsonl_text(self.test),
                     out / "README.md": self.card})


# ------------------------------------------------------------------------------------------- numbers
def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def bt_prob(reward_a: float, reward_b: float, temperature: float) -> float:
    """Bradley-Terry: P(a > b) = sigmoid((r(a) - r(b)) / temperature)."""
    return sigmoid((reward_a - reward_b) / temperature)


def disagree(diffs: Sequence[float], tol: float = 1e-12) -> bool:
    """Controversial: the user types' reward differences point in opposite directions."""
    return any(d > tol for d in diffs) and any(d < -tol for d in diffs)


def vector(x: np.ndarray, decimals: int = 5) -> list[float]:
    return [round(float(v), decimals) for v in x]


def embedding_pairs(rows: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    """The (chosen, rejected) embeddings of feature-benchmark rows as two arrays [n, dim]."""
    return (np.array([r["chosen_embedding"] for r in rows], dtype=np.float64),
            np.array([r["rejected_embedding"] for r in rows], dtype=np.float64))


def gaussian_items(rng: np.random.Generator, n_items: int, dim: int, test_every: int = 5) -> dict[str, np.ndarray]:
    """Standard-normal item features, rounded as they will be written; every ``test_every``-th item is held out."""
    x = np.round(rng.standard_normal((n_items, dim)), 5)
    test = np.arange(n_items) % test_every == test_every - 1
    return {"train": x[~test], "test": x[test]}


def draw_two(rng: np.random.Generator, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i, j = rng.choice(len(items), size=2, replace=False)
    return items[i], items[j]


def check_size(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DataError(f"size '{name}' must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_sizes(**sizes: Any) -> None:
    """check_size for each keyword: every build function validates its counts the same way."""
    for name, value in sizes.items():
        check_size(name, value)


def _as_number(value: Any) -> float:
    """A number, or a numeric string (``--set`` reads values as YAML, which keeps ``1e-3`` and ``inf`` as
    strings); NaN for anything else, a bool included."""
    if isinstance(value, (int, float, str, np.integer, np.floating)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    return math.nan


def check_fraction(name: str, value: Any) -> float:
    number = _as_number(value)
    if not 0.0 <= number <= 1.0:
        raise DataError(f"'{name}' must be a number in [0, 1], got {value!r}")
    return number


def check_positive(name: str, value: Any) -> float:
    """A positive finite number (a temperature, a Dirichlet alpha: 0 divides by zero, a negative temperature
    reverses every preference)."""
    number = _as_number(value)
    if not (math.isfinite(number) and number > 0):
        raise DataError(f"'{name}' must be a positive finite number, got {value!r}")
    return value if isinstance(value, (int, float)) else number


def split_counts(total: int, weights: Sequence[float]) -> list[int]:
    """Largest-remainder split of ``total`` into len(weights) integer counts (deterministic)."""
    raw = [total * w / sum(weights) for w in weights]
    counts = [math.floor(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: counts[i] - raw[i])[: total - sum(counts)]:
        counts[i] += 1
    return counts


def make_users(prefix: str, groups: Sequence[tuple[str, int, Callable[[int], Any]]]) -> list[User]:
    """Users ``{prefix}{i:03d}`` over groups given as (group, count, params_for_user_index)."""
    users: list[User] = []
    for group, count, params in groups:
        for _ in range(count):
            users.append(User(f"{prefix}{len(users):03d}", group, params(len(users))))
    return users


def dirichlet_users(rng: np.random.Generator, prefix: str, n: int, alpha: float, names: Sequence[str],
                    basis: np.ndarray | None = None, first: int = 0) -> list[User]:
    """``n`` users ``{prefix}{i:03d}`` (i from ``first``), each a Dirichlet(alpha) mix w over ``names``: params
    ``w @ basis`` (or w itself), group = the name of the largest weight."""
    weights = rng.dirichlet([alpha] * len(names), size=n)
    return [User(f"{prefix}{first + i:03d}", names[int(np.argmax(w))], w if basis is None else w @ basis)
            for i, w in enumerate(weights)]


SHARED_UNSEEN = 12  # the builders' default n_unseen_users


def unseen_dirichlet_users(rng: np.random.Generator, seed: int, n: int, alpha: float, names: Sequence[str],
                           basis: np.ndarray | None = None) -> list[User]:
    """The unseen users ``new000``... of a Dirichlet benchmark, drawn so that their number moves nothing else.

    The default 12 always come from the benchmark's stream ``rng`` (the first ``n`` are kept), any beyond them
    from a stream of their own: so ``n_unseen_users`` leaves the training rows as they are, and 48 unseen users
    are the default 12 plus 36 more, not a fresh draw. The default data is what it was before this rule."""
    users = dirichlet_users(rng, "new", SHARED_UNSEEN, alpha, names, basis)[:n]
    if n > SHARED_UNSEEN:
        users += dirichlet_users(np.random.default_rng([seed, 2]), "new", n - SHARED_UNSEEN, alpha, names, basis,
                                 first=SHARED_UNSEEN)
    return users


# --------------------------------------------------------------------------------------------- banks
@lru_cache(maxsize=None)
def _bank(name: str) -> tuple[dict, ...]:
    text = resources.files("pluralign.data").joinpath("text_banks", f"{name}.jsonl").read_text("utf-8")
    return tuple(json.loads(line) for line in text.splitlines() if line.strip())


def load_bank(name: str) -> list[dict]:
    """A shipped text bank (``pluralign/data/text_banks/{name}.jsonl``, built by data/build_text_banks.py)."""
    try:
        return [dict(r) for r in _bank(name)]
    except FileNotFoundError:
        raise DataError(f"text bank '{name}' is missing; run data/build_text_banks.py") from None


# ---------------------------------------------------------------------------------------------- rows
def label(rng: np.random.Generator, c: Candidate, user: User, role: str | None = None) -> dict:
    """Sample the preference from the true probability; the winner goes to ``chosen``."""
    a_wins = rng.random() < c.p_a
    chosen, rejected = (c.a, c.b) if a_wins else (c.b, c.a)
    row: dict[str, Any] = dict(c.prompt)
    for side, option in (("chosen", chosen), ("rejected", rejected)):
        if "text" in option:
            row[side] = option["text"]
        if "embedding" in option:
            row[f"{side}_embedding"] = option["embedding"]
    row["user_id"] = user.user_id
    row["group"] = user.group
    if role is not None:
        row["role"] = role
    row["oracle_p"] = round(c.p_a if a_wins else 1.0 - c.p_a, 6)
    row["controversial"] = bool(c.controversial)
    if "attributes" in chosen:
        row["chosen_attributes"] = chosen["attributes"]
        row["rejected_attributes"] = rejected["attributes"]
    return row


CONTEXTS = ("random", "survey")
MAX_SURVEY_DRAWS = 10_000


def _rows(rng: np.random.Generator, draw: Draw, user: User, split: str, n: int, role: str | None,
          controversial_only: bool = False) -> list[dict]:
    """At least ``n`` labelled rows; a draw's unit (e.g. a cyclic triple) is never cut in half, except by
    ``controversial_only``, which keeps only the pairs on which user types disagree."""
    rows: list[dict] = []
    for _ in range(MAX_SURVEY_DRAWS * n):
        if len(rows) >= n:
            return rows
        candidates = draw(rng, user, split)
        rows.extend(label(rng, c, user, role) for c in candidates if c.controversial or not controversial_only)
    if len(rows) >= n:  # the last draw's
        return rows
    wanted = "controversial pairs (context='survey')" if controversial_only else "pairs"
    raise DataError(f"{len(rows)} of {n} {wanted} for user {user.user_id} after {MAX_SURVEY_DRAWS * n} draws: "
                    "the benchmark's options leave too few to draw from")


def assemble(
    name: str,
    description: str,
    seen: Sequence[User],
    unseen: Sequence[User],
    draw: Draw,
    rng: np.random.Generator,
    pairs_per_user: int,
    test_pairs_per_user: int,
    n_context: int,
    n_query: int,
    notes: Sequence[str] = (),
    context: str = "random",
    prior: UserPrior | None = None,
) -> Benchmark:
    """Rows of seen users (train and held-out test) and of unseen users (context, then query).

    ``context`` is how an unseen user's context pairs are drawn: ``random``, like every other pair (half
    of them say nothing about who the user is on the benchmarks with consensus pairs), or ``survey``, only
    controversial pairs — the VPL paper's protocol, whose few-shot contexts come from a survey of pairs
    that users answer differently (WEIRDLabUW/vpl_llm, ``controversial_only``).
    """
    check_size("n_context", n_context, MIN_ADAPT_ROWS)
    check_size("n_query", n_query, MIN_ADAPT_ROWS)
    if context not in CONTEXTS:
        raise DataError(f"context must be one of {CONTEXTS}, got {context!r}")
    train = [r for u in seen for r in _rows(rng, draw, u, "train", pairs_per_user, None)]
    test = [r for u in seen for r in _rows(rng, draw, u, "test", test_pairs_per_user, None)]
    for u in unseen:
        # context pairs come from the train-split items, queries from the held-out ones
        test += _rows(rng, draw, u, "train", n_context, "context", controversial_only=context == "survey")
        test += _rows(rng, draw, u, "test", n_query, "query")
    if context == "survey":
        notes = [*notes, "unseen users' context pairs: controversial pairs only (survey contexts, as in VPL)"]
    return Benchmark(name, train, test, card(name, description, seen, unseen, train, test, notes), prior)


# ---------------------------------------------------------------------------------------------- card
def oracle_accuracy(rows: Sequence[dict]) -> float:
    """As the metrics count it: a tie (oracle_p = 0.5) is half right."""
    return float(np.mean(hits(np.array([r["oracle_p"] for r in rows])))) if rows else float("nan")


def _groups(users: Sequence[User]) -> str:
    counts: dict[str, int] = {}
    for u in users:
        counts[u.group] = counts.get(u.group, 0) + 1
    return ", ".join(f"{g}: {n}" for g, n in counts.items()) or "none"


def card(
    name: str,
    description: str,
    seen: Sequence[User],
    unseen: Sequence[User],
    train: Sequence[dict],
    test: Sequence[dict],
    notes: Sequence[str] = (),
) -> str:
    held_out = [r for r in test if "role" not in r]
    query = [r for r in test if r.get("role") == "query"]
    scored = held_out + query  # unseen users' context rows adapt, they are not scored
    controversial = [r for r in scored if r["controversial"]]
    lines = [
        f"# Synthetic benchmark `{name}`",
        "",
        description.strip(),
        "",
        "Generated by `pluralign.data.synthetic` (deterministic by seed). Labels are sampled from the true",
        "preference probability; `oracle_p` is the true P(chosen > rejected) for the row's user, so the",
        "oracle accuracy below (mean of `oracle_p > 0.5`, a tie half) is the ceiling for any method.",
        "",
        "| | users | groups | rows |",
        "|---|---|---|---|",
        f"| seen (train + held-out test) | {len(seen)} | {_groups(seen)} | {len(train)} train, {len(held_out)} test |",
        f"| unseen (context, then query) | {len(unseen)} | {_groups(unseen)} | {len(test) - len(held_out)} test |",
        "",
        "| oracle accuracy | value |",
        "|---|---|",
        f"| train | {oracle_accuracy(train):.3f} |",
        f"| test, seen users (held-out pairs) | {oracle_accuracy(held_out):.3f} |",
        f"| test, unseen users (query rows) | {oracle_accuracy(query):.3f} |",
        f"| test, controversial pairs ({len(controversial)} of {len(scored)} scored) | "
        f"{oracle_accuracy(controversial):.3f} |",
        "",
    ]
    if notes:
        lines += [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)
