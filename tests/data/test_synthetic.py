"""Synthetic benchmarks: determinism, contract, oracle, protocol layout (tiny builds, a few seconds)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pluralign.data.contract import DataError, validate_rows
from pluralign.data.synthetic import BENCHMARKS, Benchmark, build_benchmark
from pluralign.data.synthetic import attributes, cyclic, pets
from pluralign.data.synthetic._common import load_bank, oracle_accuracy, sigmoid
from pluralign.data.text_attributes import count_syllables, flesch_reading_ease, formality, measure, sentiment

TINY = dict(n_users=4, n_unseen_users=2, pairs_per_user=12, test_pairs_per_user=6, n_context=16, n_query=16)


@pytest.fixture(scope="module")
def tiny() -> dict[str, Benchmark]:
    return {name: build_benchmark(name, seed=0, **TINY) for name in BENCHMARKS}


def test_names() -> None:
    assert set(BENCHMARKS) == {"pets", "attributes", "ideal-points", "majority-minority", "cyclic", "dirichlet-mixture"}


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_deterministic_by_seed(name: str, tiny: dict[str, Benchmark]) -> None:
    again = build_benchmark(name, seed=0, **TINY)
    assert again.train == tiny[name].train and again.test == tiny[name].test and again.card == tiny[name].card
    other = build_benchmark(name, seed=1, **TINY)
    assert other.train != tiny[name].train


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_rows_follow_the_contract(name: str, tiny: dict[str, Benchmark]) -> None:
    bench = tiny[name]
    for rows in (bench.train, bench.test):
        validate_rows(rows, f"{name}")
        for row in rows:
            assert 0.0 <= row["oracle_p"] <= 1.0 and isinstance(row["controversial"], bool)
            assert row["user_id"] and row["group"]
    text = "chosen" in bench.train[0]
    assert text == (name in {"pets", "attributes", "majority-minority"})
    assert all("role" not in r for r in bench.train)


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_unseen_users_have_context_then_queries(name: str, tiny: dict[str, Benchmark]) -> None:
    bench = tiny[name]
    seen = {r["user_id"] for r in bench.train}
    unseen: dict[str, list[str]] = {}
    for r in bench.test:
        if "role" in r:
            assert r["user_id"] not in seen
            unseen.setdefault(r["user_id"], []).append(r["role"])
        else:
            assert r["user_id"] in seen
    assert len(unseen) == TINY["n_unseen_users"]
    for roles in unseen.values():
        n_context = roles.count("context")
        assert n_context >= 16 and roles.count("query") >= 16
        assert roles[:n_context] == ["context"] * n_context  # all context rows come first


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_survey_contexts_are_controversial(name: str, tiny: dict[str, Benchmark]) -> None:
    survey = build_benchmark(name, seed=0, context="survey", **TINY)
    assert survey.train == tiny[name].train  # only the unseen users' context draw changes
    context = [r for r in survey.test if r.get("role") == "context"]
    assert len(context) >= 16 * TINY["n_unseen_users"] and all(r["controversial"] for r in context)
    assert "survey contexts" in survey.card


def test_attributes_prompt_hints_state_the_users_criterion(tiny: dict[str, Benchmark]) -> None:
    hinted = build_benchmark("attributes", seed=0, prompt_hints=1.0, **TINY)
    for row in hinted.train + hinted.test:
        assert row["prompt"].endswith(attributes.HINTS[row["group"]])
    half = build_benchmark("attributes", seed=0, prompt_hints=0.5, n_users=8, pairs_per_user=50)
    share = np.mean([any(row["prompt"].endswith(h) for h in attributes.HINTS.values()) for row in half.train])
    assert 0.4 < share < 0.6
    assert not any("Please" in row["prompt"] for row in tiny["attributes"].train)  # off by default
    with pytest.raises(DataError, match="prompt_hints"):
        build_benchmark("attributes", seed=0, prompt_hints=2.0)


def test_context_must_be_known() -> None:
    with pytest.raises(DataError, match="context must be one of"):
        build_benchmark("pets", seed=0, context="chosen", **TINY)


def test_sizes() -> None:
    bench = build_benchmark("pets", seed=0, **TINY)
    assert len(bench.train) == 4 * 12
    assert len(bench.test) == 4 * 6 + 2 * (16 + 16)


def test_oracle_accuracy_in_band() -> None:
    # defaults are tuned to an oracle accuracy of about 0.88-0.91; smaller builds still land near it
    for name in BENCHMARKS:
        bench = build_benchmark(name, seed=3, n_users=8, n_unseen_users=2, pairs_per_user=60)
        assert 0.83 <= oracle_accuracy(bench.train) <= 0.95, name


def test_the_cards_oracle_rows_are_the_scored_rows_and_a_tie_is_half() -> None:
    """The card counted unseen users' context rows among the controversial test pairs (557 of 1176 on pets; 473 of
    the 984 scored), and a tie (oracle_p = 0.5) as wrong where the metrics count it half."""
    bench = build_benchmark("pets", seed=0)
    scored = [r for r in bench.test if r.get("role") != "context"]
    controversial = [r for r in scored if r["controversial"]]
    assert (len(scored), len(controversial)) == (984, 473)
    assert f"| test, controversial pairs (473 of 984 scored) | {oracle_accuracy(controversial):.3f} |" in bench.card
    assert oracle_accuracy([{"oracle_p": 0.5}, {"oracle_p": 0.9}, {"oracle_p": 0.2}]) == 0.5


def test_labels_are_sampled() -> None:
    # some labels go against the oracle (oracle_p < 0.5), about as often as the oracle predicts
    rows = build_benchmark("pets", seed=0).train
    noisy = np.mean([r["oracle_p"] < 0.5 for r in rows])
    expected = np.mean([1 - max(r["oracle_p"], 1 - r["oracle_p"]) for r in rows])
    assert 0.05 < noisy < 0.2 and abs(noisy - expected) < 0.03


def test_pets_oracle_by_hand(tiny: dict[str, Benchmark]) -> None:
    # helpful user: r = 2 helpful + harmless; harmless user: r = helpful + 2 harmless; T = 0.55
    species = {r["text"]: r["species"] for r in load_bank("pets")}
    reward = {"helpful": {"bird": 3, "dog": 2, "cat": 1, "rabbit": 0},
              "harmless": {"bird": 3, "dog": 1, "cat": 2, "rabbit": 0}}
    for r in tiny["pets"].train:
        a, b = species[r["chosen"]], species[r["rejected"]]
        assert r["oracle_p"] == pytest.approx(sigmoid((reward[r["group"]][a] - reward[r["group"]][b]) / 0.55), abs=1e-6)
        assert r["controversial"] == ({a, b} == {"dog", "cat"})
    # a dog statement over a cat one: helpful user sigmoid(1/0.55), harmless user sigmoid(-1/0.55)
    dog = {"helpful": 1.0, "harmless": 0.0}
    cat = {"helpful": 0.0, "harmless": 1.0}
    assert pets.reward("helpful", dog) - pets.reward("helpful", cat) == 1.0
    assert sigmoid(1 / 0.55) == pytest.approx(1 / (1 + math.exp(-1 / 0.55)))


def test_pets_half_controversial() -> None:
    rows = build_benchmark("pets", seed=0).train
    assert abs(np.mean([r["controversial"] for r in rows]) - 0.5) < 0.04


def test_attributes_consensus_and_two_against_two(tiny: dict[str, Benchmark]) -> None:
    from pluralign.data.synthetic.attributes import response_pool

    z = {o["text"]: o["z"] for split in response_pool()[0].values() for per_prompt in split for o in per_prompt}
    for r in tiny["attributes"].train:
        n_up = int(np.sum(z[r["chosen"]] > z[r["rejected"]]))
        assert (n_up == 2) == r["controversial"] and n_up in (0, 2, 4)
        assert r["chosen_attributes"] == measure(r["chosen"])  # attributes are measured from the text
        group_axis = ["length", "readability", "formality", "sentiment"].index(r["group"])
        diff = z[r["chosen"]][group_axis] - z[r["rejected"]][group_axis]
        assert r["oracle_p"] == pytest.approx(sigmoid(diff / attributes.TEMPERATURE), abs=1e-6)


def test_majority_minority_groups_oppose() -> None:
    bench = build_benchmark("majority-minority", seed=0, n_users=22, n_unseen_users=2, pairs_per_user=30,
                            test_pairs_per_user=6)
    groups = [r["group"] for r in bench.train]
    assert groups.count("majority") == 10 * groups.count("minority")
    for r in bench.train:
        longer = r["chosen_attributes"]["length"] > r["rejected_attributes"]["length"]
        assert r["controversial"]
        # the oracle agrees with the chosen side iff the group's preferred direction matches
        assert (r["oracle_p"] > 0.5) == (longer == (r["group"] == "majority"))


def test_cyclic_triples_are_intransitive(tiny: dict[str, Benchmark]) -> None:
    rows = tiny["cyclic"].train
    assert len(rows) % 3 == 0
    for k in range(0, len(rows), 3):
        triple = rows[k:k + 3]
        assert len({r["user_id"] for r in triple}) == 1
        wins: dict[tuple, int] = {}
        for r in triple:
            winner = r["chosen_embedding"] if r["oracle_p"] > 0.5 else r["rejected_embedding"]
            loser = r["rejected_embedding"] if r["oracle_p"] > 0.5 else r["chosen_embedding"]
            wins[tuple(winner)] = wins.get(tuple(winner), 0) + 1
            wins.setdefault(tuple(loser), 0)
        assert sorted(wins.values()) == [1, 1, 1]  # a cycle: each item beats exactly one other


def test_cyclic_skew_score_by_hand() -> None:
    # points at 0 and 120 degrees on plane 0: s = sin(0 - 120 deg) < 0, so the 120-degree item wins
    a = np.array([1.0, 0.0, 0.0, 0.0])
    b = np.array([math.cos(2 * math.pi / 3), math.sin(2 * math.pi / 3), 0.0, 0.0])
    assert cyclic.skew_score(a, b, 0) == pytest.approx(-math.sin(2 * math.pi / 3))
    assert cyclic.skew_score(a, b, 0) == pytest.approx(-cyclic.skew_score(b, a, 0))
    assert cyclic.skew_score(a, b, 1) == 0.0


def test_ideal_points_oracle_by_hand() -> None:
    from pluralign.data.synthetic import ideal_points

    ideal = np.array([0.0, 0.0])
    near, far = np.array([1.0, 0.0]), np.array([2.0, 0.0])
    assert ideal_points.reward(ideal, near) - ideal_points.reward(ideal, far) == 3.0  # -1 - (-4)


def test_write(tmp_path, tiny: dict[str, Benchmark]) -> None:
    tiny["ideal-points"].write(tmp_path / "ip")
    lines = (tmp_path / "ip" / "train.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == tiny["ideal-points"].train
    assert (tmp_path / "ip" / "test.jsonl").exists()
    card = (tmp_path / "ip" / "README.md").read_text()
    assert "oracle accuracy" in card and "ideal-points" in card


def test_bad_name_and_sizes() -> None:
    with pytest.raises(DataError, match="known: pets"):
        build_benchmark("nope")
    with pytest.raises(DataError, match="n_users"):
        build_benchmark("pets", n_users=0)
    with pytest.raises(DataError, match="n_context"):
        build_benchmark("cyclic", n_context=4)
    with pytest.raises(DataError, match="no option 'n_uzers'"):
        build_benchmark("pets", n_uzers=3)
    with pytest.raises(DataError, match="user_mix"):
        build_benchmark("attributes", user_mix="median")


def test_attributes_balanced_splits() -> None:
    from pluralign.data.synthetic.attributes import split_of, split_shares, z_gaps

    # length sides with readability (0), formality (1) or sentiment (2); the sign of the gap does not matter
    assert [split_of(np.array(d)) for d in ([1, 1, -1, -1], [1, -1, 1, -1], [-1, 1, 1, -1])] == [0, 1, 2]
    assert split_of(np.array([-1.0, 1.0, 1.0, -1.0])) == split_of(np.array([1.0, -1.0, -1.0, 1.0]))
    shares = split_shares("train")
    assert sum(shares.values()) == pytest.approx(1.0)
    assert max(shares.values()) > 0.45  # the bank's skew the option removes
    sizes = dict(n_users=8, n_unseen_users=2, pairs_per_user=150)
    for balanced, lowest, highest in ((False, 0.2, 0.55), (True, 0.28, 0.39)):
        rows = [r for r in build_benchmark("attributes", seed=0, balanced_splits=balanced, **sizes).train
                if r["controversial"]]
        share = np.bincount([split_of(d) for d in z_gaps(rows)], minlength=3) / len(rows)
        assert lowest < share.min() and share.max() < highest, (balanced, share)
    default = build_benchmark("attributes", seed=0, **TINY)
    assert default.train == build_benchmark("attributes", seed=0, balanced_splits=False, **TINY).train
    with pytest.raises(DataError, match="balanced_splits must be true or false"):
        build_benchmark("attributes", balanced_splits="yes")


@pytest.mark.parametrize("name, options", [("ideal-points", {}), ("dirichlet-mixture", {}),
                                           ("attributes", {"user_mix": "dirichlet"})])
def test_more_unseen_users_add_to_the_default_ones(name: str, options: dict) -> None:
    """n_unseen_users moves nothing else: the training rows stay, and 20 unseen users are the default 12 and 8 more
    (so a run with more users is comparable with the default one), 3 are the first 3 of them."""
    sizes = dict(n_users=4, pairs_per_user=12, test_pairs_per_user=6, n_context=16, n_query=16, **options)
    default, more, fewer = (build_benchmark(name, seed=5, n_unseen_users=n, **sizes) for n in (12, 20, 3))
    assert default.train == more.train == fewer.train
    unseen = [[r for r in b.test if r["user_id"].startswith("new")] for b in (default, more, fewer)]
    assert unseen[1][:len(unseen[0])] == unseen[0] and unseen[2] == unseen[0][:len(unseen[2])]
    assert len({r["user_id"] for r in unseen[1]}) == 20 and unseen[1][-1]["user_id"] == "new019"


def test_attributes_dirichlet_users() -> None:
    bench = build_benchmark("attributes", seed=0, user_mix="dirichlet", **TINY)
    validate_rows(bench.train)
    assert {r["group"] for r in bench.train} <= {"length", "readability", "formality", "sentiment"}


def test_text_attributes_by_hand() -> None:
    assert count_syllables("cat") == 1 and count_syllables("table") == 2 and count_syllables("banana") == 3
    # "The cat sat." -> 3 words, 1 sentence, 3 syllables: 206.835 - 1.015 * 3 - 84.6 * 1
    assert flesch_reading_ease("The cat sat.") == pytest.approx(206.835 - 1.015 * 3 - 84.6)
    assert formality("Hey, it's cool.") == pytest.approx(-100.0)  # hey, it's, cool: 3 informal of 3 words
    assert formality("Furthermore, one should proceed.") == pytest.approx(25.0)
    assert sentiment("A great day, sadly short.") == pytest.approx(0.0)
    assert sentiment("What a wonderful dog.") == pytest.approx(25.0)
    assert measure("Dogs love walks.")["length"] == 3.0


def test_banks_are_measured_by_text_attributes() -> None:
    bank = load_bank("responses")
    for r in bank[::97]:
        assert r["attributes"] == measure(r["text"])
    assert len({r["text"] for r in bank}) > 1000


def test_the_shipped_default_data_is_the_seed_0_build(tmp_path) -> None:
    """data/pets (what `make demo` and the README's demo table use) is `pluralign data build pets --seed 0`, file
    for file: the demo takes its Bayes ceiling from that build's generator, and a builder change that moved
    the rows without the shipped files following would make the table and the ceiling disagree."""
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "data" / "pets"
    build_benchmark("pets", seed=0).write(tmp_path)
    for name in ("train.jsonl", "test.jsonl", "README.md"):
        assert (tmp_path / name).read_bytes() == (shipped / name).read_bytes(), name
