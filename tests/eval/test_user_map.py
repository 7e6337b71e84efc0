"""The user map: learned and inferred user vectors by group, the type-recovery share, the plot and the CLI."""

import json

import pytest

from conftest import two_group_rows
from pluralign.cli import main
from pluralign.data import PreferenceSet
from pluralign.eval.user_map import plot_user_map, type_recovery, user_groups, user_vectors
from pluralign.io import write_jsonl
from pluralign.methods import METHODS


def test_type_recovery_by_hand():
    records = [
        {"user_id": "a1", "group": "a", "seen": True, "vector": [0.0, 0.0]},
        {"user_id": "a2", "group": "a", "seen": True, "vector": [2.0, 0.0]},  # centroid a = (1, 0)
        {"user_id": "b1", "group": "b", "seen": True, "vector": [0.0, 4.0]},  # centroid b = (0, 4)
        {"user_id": "n1", "group": "a", "seen": False, "vector": [1.0, 1.0]},  # nearer a: right
        {"user_id": "n2", "group": "b", "seen": False, "vector": [1.0, 1.9]},  # nearer a (1.9 vs 2.3): wrong
        {"user_id": "n3", "group": "b", "seen": False, "vector": [0.0, 3.0]},  # nearer b: right
    ]
    assert type_recovery(records) == pytest.approx(2 / 3)
    assert type_recovery(records[:1] + records[3:]) is None  # one group of seen users: nothing to tell apart


def test_vectors_of_seen_and_unseen_users_and_the_plot(tmp_path):
    train, test = two_group_rows(n_users=6, pairs=60, unseen=2)
    test_set = PreferenceSet.from_rows(test)
    assert user_groups(test_set)["new0"] == ("b", False) and user_groups(test_set)["u0"] == ("b", True)
    model = METHODS["pal-a"](k=2, hidden=[], pref_dim=4, epochs=40, lr=0.05).fit(train, progress=False)
    records = user_vectors(model, test_set, shots=8)
    assert [r["user_id"] for r in records] == [f"u{i}" for i in range(6)] + ["new0", "new1"]
    assert records[0]["vector"] == model.known_user("u0").mean.tolist()
    context = [r for r in test if r.get("user_id") == "new1" and r.get("role") == "context"][:8]
    assert records[-1]["vector"] == pytest.approx(model.infer_user(context).mean.tolist())
    assert type_recovery(records) == 1.0  # two opposed groups, 8 pairs each: both new users placed right
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    assert user_vectors(model, tmp_path / "test.jsonl", shots=8) == records  # a path, as evaluate takes one
    path = plot_user_map(records, tmp_path / "users.png", "pal-a")
    assert path.read_bytes()[:4] == b"\x89PNG"
    bt = METHODS["bt"](epochs=1, hidden=[4]).fit(train, progress=False)
    with pytest.raises(ValueError, match="bt: this method has no user vectors"):
        user_vectors(bt, test_set)


def test_users_command(tmp_path, capsys):
    train, test = two_group_rows(n_users=3, pairs=40)
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "test.jsonl", test)
    run = tmp_path / "run"
    assert main(["fit", "pal-a", "--data", str(tmp_path), "--out", str(run), "--set", "epochs=5", "--no-progress"]) == 0
    assert main(["users", "--run", str(run), "--data", str(tmp_path), "--out", str(tmp_path / "map.png")]) == 0
    saved = json.loads((tmp_path / "map.json").read_text())
    assert saved["method"] == "pal-a" and saved["shots"] == 8 and len(saved["users"]) == 5
    assert (tmp_path / "map.png").exists()
    assert main(["users", "--run", str(run), "--data", str(tmp_path), "--out", str(tmp_path / "x.png"),
                 "--shots", "-1"]) == 2
    assert "--shots -1: must be non-negative" in capsys.readouterr().err and not (tmp_path / "x.png").exists()


def test_bayes_type_recovery_script_reference(benchmark_script):
    module = benchmark_script("type_recovery")
    assert module.bayes_recovery("attributes", 0, shots=0) == pytest.approx(0.25)  # no pairs: a four-way tie
    assert module.bayes_recovery("majority-minority", 0, shots=8) == 1.0  # opposite signs: 8 pairs tell
    assert module.bayes_recovery("attributes", 0, shots=16) >= module.bayes_recovery("attributes", 0, shots=1)


def test_one_dimensional_user_vectors_are_drawn_on_a_line(tmp_path) -> None:
    """A method whose users are one number (e.g. two groups' posterior share) has no second component."""
    records = [{"user_id": f"u{i}", "group": "ab"[i % 2], "seen": i < 4, "vector": [0.3 * i]} for i in range(6)]
    path = plot_user_map(records, tmp_path / "line.png", "one axis")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_one_user_is_drawn_as_a_point(tmp_path) -> None:
    """One user's vector has no second principal component: the map raised IndexError."""
    path = plot_user_map([{"vector": [0.2, 0.5, 0.1], "seen": True, "group": "a"}], tmp_path / "one.png")
    assert path.stat().st_size > 0


def test_users_the_model_cannot_place_are_left_out_and_none_is_an_error(tmp_path, capsys) -> None:
    """Rows without a user_id, and seen users the run never trained, have no vector: left out of the map; a map
    with no user at all is a one-line error, and neither the PNG nor the JSON is written."""
    train, _ = two_group_rows(n_users=3, pairs=20)
    write_jsonl(tmp_path / "train.jsonl", train)
    run = tmp_path / "run"
    assert main(["fit", "pal-a", "--data", str(tmp_path), "--out", str(run), "--set", "epochs=1", "--no-progress"]) == 0
    strangers = [{**r, "user_id": "x" + r["user_id"]} for r in train[:6]]
    anonymous = [{k: v for k, v in r.items() if k != "user_id"} for r in train[:3]]
    model = METHODS["pal-a"].from_pretrained(run)
    assert [r["user_id"] for r in user_vectors(model, PreferenceSet.from_rows(train[:4] + anonymous))] == ["u0"]
    write_jsonl(tmp_path / "strangers.jsonl", strangers + anonymous)
    out = tmp_path / "map.png"
    assert main(["users", "--run", str(run), "--data", str(tmp_path / "strangers.jsonl"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (f"pluralign: error: {tmp_path / 'strangers.jsonl'}: no users to draw: "
                                               f"no user ids {run} knows, and no unseen users (rows with role "
                                               "context/query)")
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_no_type_recovery_where_the_unseen_users_share_one_vector() -> None:
    """At k = 0 every unseen user is the population vector: its one nearest centroid would make the share that
    group's share of the unseen users, a tie-break and no measure of the method."""
    records = [
        {"user_id": "a1", "group": "a", "seen": True, "vector": [0.0, 0.0]},
        {"user_id": "b1", "group": "b", "seen": True, "vector": [0.0, 4.0]},
        {"user_id": "n1", "group": "a", "seen": False, "vector": [0.5, 1.0]},
        {"user_id": "n2", "group": "b", "seen": False, "vector": [0.5, 1.0]},
    ]
    assert type_recovery(records) is None
    assert type_recovery(records[:3]) == 1.0  # one unseen user: nothing shared
    assert type_recovery([*records[:3], {**records[3], "vector": [0.5, 3.0]}]) == 1.0


def test_users_command_at_zero_shots_and_beyond_the_contexts(tmp_path, capsys, caplog) -> None:
    """users --shots 0 reports no type recovery (in the JSON, the title and the line); a --shots above every
    unseen user's context size says so, as eval and predict do."""
    train, test = two_group_rows(n_users=3, pairs=20, context=4, queries=4)
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "test.jsonl", test)
    run = tmp_path / "run"
    assert main(["fit", "pal-a", "--data", str(tmp_path), "--out", str(run), "--set", "epochs=1", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["users", "--run", str(run), "--data", str(tmp_path), "--out", str(tmp_path / "zero.png"),
                 "--shots", "0"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'zero.png'} and {tmp_path / 'zero.json'} (5 users)"
    assert json.loads((tmp_path / "zero.json").read_text())["type_recovery"] is None
    with caplog.at_level("WARNING", logger="pluralign"):
        assert main(["users", "--run", str(run), "--data", str(tmp_path), "--out", str(tmp_path / "many.png"),
                     "--shots", "100"]) == 0
    assert (f"shots 100: the largest context in {tmp_path / 'test.jsonl'} is 4 pair(s); at a larger k every unseen "
            "user adapts on all of theirs") in caplog.text
