"""split_by_user: real data into seen users' train/test and unseen users' context/query rows."""

from collections import Counter

import numpy as np
import pytest

from conftest import two_group_rows
from pluralign.cli import main
from pluralign.data import DataError, PreferenceSet, read_preferences
from pluralign.data.split import _stratified, split_by_user
from pluralign.io import write_jsonl


@pytest.fixture(scope="module")
def pooled():
    train, _ = two_group_rows(n_users=6, pairs=30)  # u0..u5, 30 pairs each
    extra = [{k: v for k, v in r.items() if k != "user_id"} for r in train[:5]]  # rows with no user
    return PreferenceSet.from_rows(train + extra, "pooled.jsonl")


def test_holds_out_whole_users_and_a_fraction_of_the_rest(pooled):
    split = split_by_user(pooled, unseen_users=2, n_context=16, test_fraction=0.2, seed=0)
    assert len(split.unseen_users) == 2 and len(split.seen_users) == 4
    roles = Counter((r["user_id"], r.get("role")) for r in split.test)
    for user in split.unseen_users:
        assert roles[(user, "context")] == 16 and roles[(user, "query")] == 14
        assert not any(r.get("user_id") == user for r in split.train)
    for user in split.seen_users:
        assert roles[(user, None)] == 6  # 20% of 30
        assert sum(r.get("user_id") == user for r in split.train) == 24
    assert sum("user_id" not in r for r in split.train) == 5  # rows without a user only train
    assert len(split.train) + len(split.test) == len(pooled)
    # the same seed gives the same split; the protocol reads it back
    again = split_by_user(pooled, unseen_users=2, n_context=16, test_fraction=0.2, seed=0)
    assert again.test == split.test and again.train == split.train
    assert split_by_user(pooled, unseen_users=2, seed=1).test != split.test


def test_default_holds_out_a_tenth_and_at_least_one(pooled):
    assert len(split_by_user(pooled).unseen_users) == 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(unseen_users=7), "--unseen-users 7, but 6 of its 6 users have more than --context 16 distinct pairs"),
    (dict(unseen_users=6), "leaves no seen user"),
    (dict(n_context=30), "no user has more than --context 30 distinct pairs"),
    (dict(n_context=0), "at least one context pair"),
    (dict(test_fraction=1.0), "--test-fraction 1.0"),
    (dict(unseen_users=0, test_fraction=0.0), "nothing to test on"),
])
def test_bad_requests_are_one_line(pooled, kwargs, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        split_by_user(pooled, **kwargs)


def test_a_seen_user_keeps_a_training_pair_whatever_the_test_fraction():
    """Users of two pairs and --test-fraction 0.75: round(1.5) held out both, leaving an empty train.jsonl (exit 0)
    and "seen" users the model never saw."""
    rows = [{"user_id": f"u{u}", "prompt": f"q{u}", "chosen": f"yes {u}{i}", "rejected": "no"}
            for u in range(5) for i in range(2)]
    split = split_by_user(PreferenceSet.from_rows(rows), unseen_users=0, test_fraction=0.75)
    assert Counter(r["user_id"] for r in split.train) == {f"u{u}": 1 for u in range(5)} and len(split.test) == 5


def test_data_without_users_or_with_one_user_says_so(pooled):
    """Rows without a user_id: said, not "no user has more than --context pairs" then "nothing to test on". One
    user: the default of one unseen user is not blamed on an --unseen-users the user never passed."""
    nobody = PreferenceSet.from_rows([{k: v for k, v in r.items() if k != "user_id"} for r in pooled.rows], "x")
    with pytest.raises(DataError, match=r"^x: no row has a user_id; a split by user needs them$"):
        split_by_user(nobody, unseen_users=0)
    one = PreferenceSet.from_rows([r for r in pooled.rows if r.get("user_id") == "u0"], "one")
    with pytest.raises(DataError, match=r"^one: one user, held out as unseen by default, leaves none to train on; "
                                        r"pass --unseen-users 0 to split their pairs$"):
        split_by_user(one)
    assert len(split_by_user(one, unseen_users=0).seen_users) == 1


def test_split_writes_nothing_over_its_source_nor_half_a_folder(pooled, tmp_path, capsys):
    """SOURCE inside --out (its train.jsonl) is refused before any work: the split once replaced its own source.
    A split that fails while writing leaves no file of it (each is renamed into place only when all are written)."""
    folder = tmp_path / "data"
    write_jsonl(folder / "train.jsonl", pooled.rows)
    before = (folder / "train.jsonl").read_bytes()
    assert main(["data", "split", str(folder / "train.jsonl"), "--out", str(folder)]) == 2
    assert capsys.readouterr().err.strip() == (f"pluralign: error: --out {folder}: holds SOURCE "
                                               f"{folder / 'train.jsonl'}; choose a folder that does not")
    assert (folder / "train.jsonl").read_bytes() == before and [p.name for p in folder.iterdir()] == ["train.jsonl"]
    from pluralign.io import write_files

    out = tmp_path / "out"
    with pytest.raises(UnicodeEncodeError):  # what a row no reader checked would do
        write_files({out / "train.jsonl": "fine", out / "test.jsonl": "\ud800", out / "README.md": "fine"})
    assert list(out.iterdir()) == []


def test_split_data_is_not_split_again(pooled):
    split = split_by_user(pooled, unseen_users=1)
    with pytest.raises(DataError, match="already have roles"):
        split_by_user(PreferenceSet.from_rows(split.test, "test.jsonl"))


def test_cli_writes_a_folder_that_fit_and_eval_read(pooled, tmp_path):
    write_jsonl(tmp_path / "all.jsonl", pooled.rows)
    out = tmp_path / "split"
    assert main(["data", "split", str(tmp_path / "all.jsonl"), "--out", str(out), "--unseen-users", "2"]) == 0
    assert "unseen users: " in (out / "README.md").read_text()
    test = read_preferences(out, split="test")
    assert Counter(test.column("role"))["context"] == 32
    run = tmp_path / "run"
    assert main(["fit", "pal-a", "--data", str(out), "--out", str(run), "--set", "epochs=2", "--no-progress"]) == 0
    assert main(["eval", "--run", str(run), "--data", str(out), "--shots", "0,8", "--out", str(tmp_path / "m.json")]) == 0
    stratified = tmp_path / "stratified"
    assert main(["data", "split", str(tmp_path / "all.jsonl"), "--out", str(stratified), "--unseen-users", "2",
                 "--stratify"]) == 0
    assert "--seed 0 --stratify`" in (stratified / "README.md").read_text()  # the card's command remakes it


def test_stratify_draws_every_group():
    """Groups of 6 and 3 users: a plain draw of 2 can miss the small group; a stratified one never does, and
    3 go 2:1 as the groups do. By hand: 8/1/1 users, 2 unseen: both from the big group (shares 1.6, 0.2,
    0.2); 3: one each; 5: one each, then the big group's deficit takes the rest."""
    train, _ = two_group_rows(n_users=9, pairs=20)
    data = PreferenceSet.from_rows(train, "groups.jsonl")
    group_of = {r["user_id"]: r["group"] for r in train}
    plain = [Counter(group_of[u] for u in split_by_user(data, 2, n_context=8, seed=seed).unseen_users)
             for seed in range(8)]
    assert any(len(c) == 1 for c in plain)  # the case stratifying is for
    for seed in range(8):
        two = split_by_user(data, 2, n_context=8, seed=seed, stratify=True).unseen_users
        assert Counter(group_of[u] for u in two) == {"a": 1, "b": 1}
        three = split_by_user(data, 3, n_context=8, seed=seed, stratify=True).unseen_users
        assert Counter(group_of[u] for u in three) == {"a": 2, "b": 1}
    users = [f"a{i}" for i in range(8)] + ["b0", "c0"]
    groups = {u: u[0] for u in users}
    rng = np.random.default_rng(0)
    for n, expected in ((2, {"a": 2}), (3, {"a": 1, "b": 1, "c": 1}), (5, {"a": 3, "b": 1, "c": 1})):
        assert Counter(groups[u] for u in _stratified(rng, users, groups, n)) == expected



def shared_pairs(n_users: int = 6, n_prompts: int = 10, repeat: bool = False) -> list[dict]:
    """Every user labels the same pairs (as PersonalLLM's simulated users do): prompt q{p}, responses a{p}, b{p};
    even users prefer a, odd users b. With ``repeat``, u0 labels each pair twice."""
    rows = []
    for u in range(n_users):
        for p in range(n_prompts) if not (repeat and u == 0) else [*range(n_prompts)] * 2:
            a, b = (f"a{p}", f"b{p}") if u % 2 == 0 else (f"b{p}", f"a{p}")
            rows.append({"user_id": f"u{u}", "prompt": f"q{p}", "chosen": a, "rejected": b, "group": str(u % 2)})
    return rows


def test_a_user_split_of_shared_pairs_tests_pairs_that_training_holds_and_says_so(tmp_path, caplog):
    """Users held out, pairs not: every query pair was labelled in training by another user. The card counts it,
    and the CLI warns; --hold-out-prompts puts no test prompt in training."""
    data = PreferenceSet.from_rows(shared_pairs(), "shared.jsonl")
    split = split_by_user(data, unseen_users=1, n_context=4, test_fraction=0.2)
    assert split.pairs_in_training() == {"query": (6, 6), "held_out": (10, 10)}
    assert "6 of 6 query rows, 10 of 10 held-out rows" in split.card("shared.jsonl", 0, 4, 0.2)
    write_jsonl(tmp_path / "shared.jsonl", data.rows)
    with caplog.at_level("WARNING", logger="pluralign"):
        assert main(["data", "split", str(tmp_path / "shared.jsonl"), "--out", str(tmp_path / "a"), "--context", "4",
                     "--unseen-users", "1"]) == 0
    assert "6 of 6 query rows are pairs that training holds, labelled by other users" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="pluralign"):
        assert main(["data", "split", str(tmp_path / "shared.jsonl"), "--out", str(tmp_path / "b"), "--context", "4",
                     "--unseen-users", "1", "--test-fraction", "0.3", "--hold-out-prompts"]) == 0
    assert "training holds" not in caplog.text
    card = (tmp_path / "b" / "README.md").read_text()
    assert "--seed 0 --hold-out-prompts`" in card and "0 of 3 query rows, 0 of 15 held-out rows" in card
    train, test = read_preferences(tmp_path / "b", "train"), read_preferences(tmp_path / "b", "test")
    held = {r["prompt"] for r in test.rows if r.get("role") != "context"}
    assert len(held) == 3 and not held & {r["prompt"] for r in train.rows}  # 0.3 of the 10 prompts
    context = [r for r in test.rows if r.get("role") == "context"]
    assert len(context) == 4 and not held & {r["prompt"] for r in context}
    # the unseen user's 3 other training-prompt pairs are left out, not trained on
    assert len(train) + len(test) == 60 - 3 and "3 pairs of unseen users on training prompts" in card


def test_a_user_whose_every_pair_is_on_a_test_prompt_is_no_seen_user():
    """--hold-out-prompts: "lone" labels only q0; where q0 is held out (seed 3) they have nothing to train on, so
    they are left out and counted, not listed as a seen user whom the model would score as nobody."""
    lone = [{"user_id": "lone", "prompt": "q0", "chosen": f"c{i}", "rejected": f"d{i}"} for i in range(2)]
    data = PreferenceSet.from_rows(shared_pairs() + lone, "lone.jsonl")
    split = split_by_user(data, unseen_users=1, n_context=4, test_fraction=0.3, seed=3, hold_out_prompts=True)
    assert "lone" not in split.seen_users + split.unseen_users and len(split.seen_users) == 5
    assert split.dropped["rows of users whose every pair is on a test prompt"] == 2
    assert not [r for r in split.train.rows + split.test.rows if r["user_id"] == "lone"]
    kept = split_by_user(data, unseen_users=1, n_context=4, test_fraction=0.3, seed=0, hold_out_prompts=True)
    assert "lone" in kept.seen_users  # q0 trains under seed 0


def test_the_card_counts_rows_without_a_user(pooled):
    """The 5 rows without a user id train pooled: the card gives their number, not "any rows"."""
    card = split_by_user(pooled, unseen_users=2, seed=0).card("pooled.jsonl", 0, 16, 0.2)
    assert "seen users and 5 rows without a user id (pooled" in card
    everyone = PreferenceSet.from_rows(shared_pairs(), "shared.jsonl")
    assert "without a user id" not in split_by_user(everyone, unseen_users=1, n_context=4).card("shared", 0, 4, 0.2)


def test_stratify_names_a_group_with_no_user_to_draw(caplog):
    """Group b's users have 6 pairs each, under --context 8 (and a query): stratifying cannot draw one of them,
    and says so instead of a plain draw from group a alone without a word."""
    rows = [{**r, "group": "a"} for r in shared_pairs(n_users=4, n_prompts=12)]
    rows += [{**r, "user_id": "b" + r["user_id"], "group": "b"} for r in shared_pairs(n_users=2, n_prompts=6)]
    with caplog.at_level("WARNING", logger="pluralign.data"):
        split = split_by_user(PreferenceSet.from_rows(rows, "strat.jsonl"), 2, n_context=8, stratify=True)
    assert all(u.startswith("u") for u in split.unseen_users)
    assert ("strat.jsonl: --stratify: no user of group(s) b has more than --context 8 distinct pairs, so none of "
            "them is drawn as unseen; lower --context to test them") in caplog.text


def test_hold_out_prompts_bad_requests_are_one_line():
    data = PreferenceSet.from_rows(shared_pairs(n_prompts=1), "one.jsonl")
    with pytest.raises(DataError, match="needs two prompts at least"):
        split_by_user(data, unseen_users=0, hold_out_prompts=True)
    data = PreferenceSet.from_rows(shared_pairs(), "shared.jsonl")
    with pytest.raises(DataError, match=r"--test-fraction 0.0: with --hold-out-prompts"):
        split_by_user(data, unseen_users=0, test_fraction=0.0, hold_out_prompts=True)
    with pytest.raises(DataError, match=r"no user has more than --context 8 pairs on the training prompts"):
        split_by_user(data, n_context=8, hold_out_prompts=True)  # 8 of the 10 prompts train: 8 pairs, not more
    embeddings = [{"user_id": "u0", "chosen_embedding": [1.0], "rejected_embedding": [0.0]}] * 3
    with pytest.raises(DataError, match="no row has a prompt to hold out"):
        split_by_user(PreferenceSet.from_rows(embeddings, "e.jsonl"), unseen_users=0, hold_out_prompts=True)


def test_an_unseen_users_repeat_of_a_context_pair_is_no_query():
    """u0 labels every pair twice: a query that repeats one of their context pairs has its answer in the context,
    so it is left out (and the card says how many). Users are drawn by their distinct pairs: u0's 20 rows are 10
    pairs, too few for 10 context pairs and a query (drawn by rows, all 10 queries could repeat the context)."""
    data = PreferenceSet.from_rows(shared_pairs(n_users=2, repeat=True), "repeats.jsonl")
    split = split_by_user(data, unseen_users=1, n_context=6, seed=1)
    assert split.unseen_users == ["u0"]
    context = {(r["prompt"], r["chosen"]) for r in split.test if r.get("role") == "context"}
    queries = [(r["prompt"], r["chosen"]) for r in split.test if r.get("role") == "query"]
    assert not context & set(queries) and queries
    dropped = split.dropped["query rows repeating a pair of the user's own context"]
    assert len(queries) == 20 - 6 - dropped and dropped >= 1
    assert f"{dropped} query rows repeating a pair" in split.card("repeats.jsonl", 1, 6, 0.2)
    with pytest.raises(DataError, match="0 of its 2 users have more than --context 10 distinct pairs"):
        split_by_user(data, unseen_users=1, n_context=10)
