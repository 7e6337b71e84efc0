"""The "Large" setting for every method trained by one Lightning run: the top backbone layer trains with
the method's own objective, saves, loads, and few-shot adapts through it; MaxMin's EM refuses it."""

import json

import pytest
import torch

from pluralign.backbones.tuned import TunedBackbone
from pluralign.data import PreferenceSet
from pluralign.data.synthetic import build_benchmark
from pluralign.methods import METHODS, ConfigError, PreferenceModel
from pluralign.methods.active import pair_features
from pluralign.methods.tuned import TunedNetwork

TINY = {
    "bt": dict(hidden=[16]),
    "gpm": dict(n_blocks=2, hidden=[16], adapt_steps=10),
    "micro": dict(n_heads=2, hidden=[], adapt_steps=10),
    "vpl": dict(latent_dim=2, hidden=[16], encoder_hidden=[16], encoder_width=16, context_max=4),
}
LARGE = dict(finetune_layers=1, finetune_epochs=1, finetune_lr=1e-3)


@pytest.fixture(scope="module")
def pets_text():
    bench = build_benchmark("pets", seed=0, n_users=4, n_unseen_users=1, pairs_per_user=12, test_pairs_per_user=4)
    return PreferenceSet.from_rows(bench.train), PreferenceSet.from_rows(bench.test)


@pytest.fixture(scope="module")
def pretrained_layers():
    return TunedBackbone(None, layers=1).encoder.state_dict()


@pytest.mark.parametrize("method", sorted(TINY))
def test_every_method_fine_tunes_saves_and_adapts(method, pets_text, pretrained_layers, tmp_path):
    train, test = pets_text
    model = METHODS[method](epochs=1, lr=0.01, batch_size=16, **TINY[method], **LARGE).fit(train, progress=False)
    assert isinstance(model.network_, TunedNetwork)
    assert model.fit_stats_["epochs"] == 2  # 1 frozen + 1 fine-tuning epoch: pairs/s counts both
    changed = {n.split(".")[2] for n, w in model.network_.backbone.encoder.state_dict().items()
               if n.startswith("encoder.layer") and not torch.equal(w, pretrained_layers[n])}
    assert changed == {"5"}  # the method's own objective reached the top layer, and nothing below it

    model.save_pretrained(tmp_path)
    saved = safe_open_keys(tmp_path / "model.safetensors")  # the top layer and the head; the frozen rest is the
    assert {n.split(".")[4] for n in saved if n.startswith("backbone.encoder.encoder.layer.")} == {"5"}  # backbone's
    assert not any(n.startswith("backbone.encoder.embeddings.") for n in saved)
    loaded = PreferenceModel.from_pretrained(tmp_path)
    context = [r for r in test.rows if r.get("role") == "context"][:4]
    columns = (test.column("prompt"), test.column("chosen"), test.column("rejected"))
    for user in (None, context) + (("u000",) if model.uses_user_ids else ()):
        expected = model.prefer_proba(*columns, user=user)
        assert torch.equal(expected, loaded.prefer_proba(*columns, user=user)), user
        assert expected.isfinite().all()
    vector = model.infer_user(context)
    assert vector.n_pairs == (4 if model.network_.user_dim else 0) and vector.mean.shape == (model.network_.user_dim,)
    if method == "gpm":  # no scalar reward: pairs only
        return
    scores = model.score(columns[0], columns[1], user=context)  # the reward reads text through the tuned backbone
    assert scores.isfinite().all() and torch.equal(scores, loaded.score(columns[0], columns[1], user=context))
    if method == "bt":  # P(a ≻ b) = σ(r(a) − r(b))
        rewards = [model.score(columns[0], columns[i]) for i in (1, 2)]
        torch.testing.assert_close(model.prefer_proba(*columns), torch.sigmoid(rewards[0] - rewards[1]))


def safe_open_keys(path) -> set[str]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as weights:
        return set(weights.keys())


def test_a_large_run_reloads_its_frozen_weights_only_from_the_backbone_it_was_tuned_on(pets_text, tmp_path):
    from safetensors.torch import save_file

    from pluralign.methods.run_files import fingerprint

    train, test = pets_text
    model = METHODS["bt"](epochs=1, lr=0.01, batch_size=16, **TINY["bt"], **LARGE).fit(train, progress=False)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    frozen = model.network_.backbone.frozen_state()
    assert config["frozen_backbone"] == {"tensors": len(frozen), "sha256": fingerprint(
        {f"backbone.{n}": t for n, t in frozen.items()})}
    columns = (test.column("prompt"), test.column("chosen"), test.column("rejected"))
    # a run saved before 2026-11-27 held every weight: it loads as it did
    save_file({k: v.contiguous() for k, v in model.network_.state_dict().items()}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({k: v for k, v in config.items()  # nor these two records
                                                      if k not in ("frozen_backbone", "weights_sha256")}))
    assert torch.equal(model.prefer_proba(*columns), PreferenceModel.from_pretrained(tmp_path).prefer_proba(*columns))
    model.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "frozen_backbone": {"sha256": "0" * 64}}))
    with pytest.raises(ValueError) as err:  # another backbone (or other files) under the same name
        PreferenceModel.from_pretrained(tmp_path)
    assert str(err.value) == (f"{tmp_path / 'config.json'}: the backbone all-MiniLM-L6-v2 is not the "
                              f"one this run was fine-tuned on (its frozen weights hash to "
                              f"{config['frozen_backbone']['sha256'][:12]}, the run recorded 000000000000)")


def test_vpl_users_and_active_queries_come_from_the_tuned_encoder(pets_text):
    train, test = pets_text
    frozen = METHODS["vpl"](epochs=1, lr=0.01, batch_size=16, **TINY["vpl"]).fit(train, progress=False)
    tuned = METHODS["vpl"](epochs=1, lr=0.01, batch_size=16, **TINY["vpl"], **LARGE).fit(train, progress=False)
    # the known users' means are re-encoded after fine-tuning: the head's frozen-fit means would be stale
    assert not torch.allclose(frozen.known_user("u000").mean, tuned.known_user("u000").mean)
    assert tuned.fit_stats_["collapse"]["latent_dim"] == 2
    pool = [r for r in test.rows if r.get("role") == "query"][:6]
    picked = tuned.select_queries(pool, n=2)
    assert len(set(picked)) == 2 and all(0 <= i < 6 for i in picked)
    # pairs the user answered are asked last, though the context's token rows are padded to another length
    width = {i: pair_features(tuned, [r]).chosen.shape[1] for i, r in enumerate(pool)}
    short = sorted(width, key=lambda i: (width[i], i))[:2]
    answered = [pool[short[0]], {**pool[short[1]], "chosen": pool[short[1]]["rejected"],
                                 "rejected": pool[short[1]]["chosen"]}]  # the same question, answered the other way
    assert pair_features(tuned, answered).chosen.shape[1] < pair_features(tuned, pool).chosen.shape[1]
    assert set(tuned.select_queries(pool, n=6, context=answered)[-2:]) == set(short)


def test_lora_adapters_train_save_and_load(pets_text, pretrained_layers, tmp_path):
    train, test = pets_text
    model = METHODS["bt"](epochs=1, lr=0.01, batch_size=16, **TINY["bt"], **LARGE, finetune_lora_rank=2)
    model.fit(train, progress=False)
    weights = model.network_.backbone.encoder.state_dict()
    adapters = [n for n in weights if "lora_" in n]
    assert adapters and all(".layer.5." in n for n in adapters)
    kept = [torch.equal(w, pretrained_layers[n.replace(".base.", ".")]) for n, w in weights.items() if "lora_" not in n]
    assert all(kept)  # the layers' own weights did not move
    model.save_pretrained(tmp_path)
    saved = safe_open_keys(tmp_path / "model.safetensors")
    assert {n for n in saved if n.startswith("backbone.")} == {f"backbone.encoder.{n}" for n in adapters}
    assert (tmp_path / "model.safetensors").stat().st_size < 1_000_000  # adapters and head; 92 MB with the backbone
    loaded = PreferenceModel.from_pretrained(tmp_path)
    columns = (test.column("prompt"), test.column("chosen"), test.column("rejected"))
    assert torch.equal(model.prefer_proba(*columns), loaded.prefer_proba(*columns))
    with pytest.raises(ConfigError, match="finetune_lora_rank=2 needs finetune_layers > 0"):
        METHODS["bt"](finetune_lora_rank=2)


def test_an_unknown_pooling_is_refused_in_one_line():
    with pytest.raises(ConfigError,
                       match="pooling='max' must be one of mean, layer-mean, input-mean, last, cls"):
        METHODS["pal-a"](pooling="max")
    with pytest.raises(ConfigError, match="finetune_layers=2 must be 0 with pooling='input-mean'"):
        METHODS["pal-a"](pooling="input-mean", finetune_layers=2)


def test_maxmin_refuses_fine_tuning():
    with pytest.raises(ConfigError, match="finetune_layers=1 must be 0"):
        METHODS["maxmin"](finetune_layers=1)


def test_text_inputs_one_pair_as_strings_and_mismatched_lengths(pets_text):
    train, test = pets_text
    model = METHODS["bt"](epochs=1, hidden=[8]).fit(train, progress=False)
    row = test.rows[0]
    one = model.prefer_proba(row["prompt"], row["chosen"], row["rejected"])
    assert one.shape == (1,)
    assert torch.equal(one, model.prefer_proba([row["prompt"]], [row["chosen"]], [row["rejected"]]))
    with pytest.raises(ValueError, match=r"bt: prompts and responses must have the same length \(got 2 prompts and 1, 1"):
        model.prefer_proba([row["prompt"]] * 2, [row["chosen"]], [row["rejected"]])


def test_finetune_script_judges_one_fit_under_each_few_shot_rule(benchmark_script, monkeypatch, tmp_path):
    """benchmarks/finetune_backbone.py --few-shot: every rule scores the same fit (its seen figures agree), and a
    method without few-shot rules is refused before any fit."""
    module = benchmark_script("finetune_backbone")
    out = tmp_path / "record.json"
    sizes = ["n_users=4", "n_unseen_users=2", "pairs_per_user=12", "test_pairs_per_user=4"]
    argv = ["finetune_backbone.py", "--method", "pal-a", "--data", "pets", "--layers", "1", "--epochs", "1",
            "--skip-tiny", "--contexts", "random", "--set", "epochs=1", "--set", "hidden=[16]",
            "--few-shot", "map", "training-users", "--out", str(out)]
    monkeypatch.setattr("sys.argv", argv + [arg for size in sizes for arg in ("--data-set", size)])
    module.main()
    record = json.loads(out.read_text())
    assert set(record["runs"]) == {"large:map", "large:training-users"}
    assert record["few_shot"] == ["map", "training-users"]
    by_rule = [record["runs"][name]["random"][0] for name in ("large:map", "large:training-users")]
    assert by_rule[0]["seen"] == by_rule[1]["seen"] and by_rule[0]["fit_seconds"] == by_rule[1]["fit_seconds"]
    assert by_rule[0]["unseen_k8_se_df"] == 1  # two unseen users
    # over seeds: the SE of the mean gap, df summed (12 users a seed), ± t₂₂ 2.074 · 0.025
    merged = module.mean([{"seen": [0.8, 0.9], "unseen_k8_gap_se": se, "unseen_k8_se_df": 11} for se in (0.03, 0.04)])
    assert merged == {"seen": [0.8, 0.9], "unseen_k8_gap_se": 0.025, "unseen_k8_se_df": 22,
                      "unseen_k8_gap_interval": pytest.approx(0.05185, abs=1e-4)}

    monkeypatch.setattr("sys.argv", ["finetune_backbone.py", "--method", "bt", "--few-shot", "map"])
    with pytest.raises(SystemExit) as exit_info:
        module.main()
    assert exit_info.value.code == 2
