"""A fitted model as TRL's reward function: the same numbers as ``score``, per-row users, chat messages."""

import pytest
import torch

from pluralign.data import PreferenceSet
from pluralign.data.synthetic import build_benchmark
from pluralign.methods import GPM, MaxMin, PalA
from pluralign.methods.reward_function import reward_function


@pytest.fixture(scope="module")
def fitted():
    bench = build_benchmark("pets", seed=0, n_users=4, n_unseen_users=1, pairs_per_user=12, test_pairs_per_user=4)
    train, test = PreferenceSet.from_rows(bench.train), PreferenceSet.from_rows(bench.test)
    pal = PalA(k=2, pref_dim=8, hidden=[], epochs=3, lr=0.01, batch_size=16, few_shot_steps=10).fit(train, progress=False)
    maxmin = MaxMin(n_groups=2, hidden=[], epochs=2, lr=0.01, batch_size=16).fit(train, progress=False)
    return pal, maxmin, train, test


def test_rewards_are_the_models_scores(fitted):
    pal, _, train, _ = fitted
    rows = train.rows[:6]
    prompts, completions = [r["prompt"] for r in rows], [r["chosen"] for r in rows]
    ids = [r["user_id"] for r in rows]
    population = reward_function(pal)(prompts=prompts, completions=completions)
    assert population == pytest.approx(pal.score(prompts, completions).tolist())
    # a user_id column (TRL passes every dataset column): each row scored for its own user
    personal = reward_function(pal)(prompts=prompts, completions=completions, user_id=ids, trainer_state=None)
    assert personal == pytest.approx(pal.score(prompts, completions, user=ids).tolist())
    assert personal != pytest.approx(population)
    # one fixed user for every row
    fixed = reward_function(pal, user=ids[0])(prompts, completions)
    assert fixed == pytest.approx(pal.score(prompts, completions, user=ids[0]).tolist())
    # a policy's fresh samples are scored without growing the on-disk embedding cache
    shards = sorted(pal.cache.root.rglob("shard-*"))
    samples = [f"A sample the policy wrote at step {i}." for i in range(3)]
    assert len(reward_function(pal)(prompts=prompts[:3], completions=samples)) == 3
    assert sorted(pal.cache.root.rglob("shard-*")) == shards


def test_new_users_chat_messages_and_errors(fitted):
    pal, maxmin, _, test = fitted
    query = [r for r in test.rows if r.get("role") == "query"][:3]
    context = PreferenceSet.from_rows([r for r in test.rows if r.get("role") == "context"][:4])
    new = pal.infer_user(context)
    prompts, completions = [r["prompt"] for r in query], [r["chosen"] for r in query]
    chat = reward_function(pal, users={"new": new})(
        prompts=[[{"role": "user", "content": p}] for p in prompts],
        completions=[[{"role": "assistant", "content": c}] for c in completions], user_id=["new"] * 3)
    assert chat == pytest.approx(pal.score(prompts, completions, user=new).tolist())
    # score and prefer_proba read chat messages as the rows and reward_function do (an AttributeError once)
    as_chat = [[{"role": "assistant", "content": c}] for c in completions]
    assert pal.score(prompts, as_chat, user=new).tolist() == pytest.approx(chat)
    assert torch.equal(pal.prefer_proba(prompts, as_chat, completions[::-1]),
                       pal.prefer_proba(prompts, completions, completions[::-1]))
    # one message as one response (and one prompt for all), not its keys "role" and "content" as two
    message = {"role": "assistant", "content": completions[0]}
    assert pal.score({"role": "user", "content": prompts[0]}, message, user=new).tolist() == pytest.approx(chat[:1])
    assert pal.prefer_proba(prompts[0], message, {"role": "assistant", "content": completions[1]}).shape == (1,)
    # no rows (an empty batch): no rewards, not "not enough values to unpack"
    assert pal.score([], []).shape == (0,) and pal.prefer_proba([], [], []).shape == (0,)
    assert maxmin.maxmin_score([], []).shape == (0,)
    with pytest.raises(TypeError, match=r"^pal-a: message 1 has no content; expected text"):
        pal.score(prompts, [[{"role": "assistant"}]] * 3)
    with pytest.raises(KeyError, match="unknown user 'stranger'"):
        reward_function(pal)(prompts, completions, user_id=["stranger"] * 3)
    # MaxMin's egalitarian reward: the worst-off group's standardized reward
    egalitarian = reward_function(maxmin, egalitarian=True)
    assert egalitarian.__name__ == "maxmin_egalitarian"
    assert egalitarian(prompts, completions) == pytest.approx(maxmin.maxmin_score(prompts, completions).tolist())
    with pytest.raises(ValueError, match="needs MaxMin"):
        reward_function(pal, egalitarian=True)
    # a user with egalitarian=True was silently not read: the worst-off group's reward is everyone's
    for who in ({"user": "u000"}, {"users": {"new": new}}):
        with pytest.raises(ValueError, match=r"^maxmin: egalitarian=True scores the worst-off group, for every "
                                             r"user alike; user and users are not read$"):
            reward_function(maxmin, egalitarian=True, **who)
    # users' keys are ids as the reader makes them: 7, 7.0 and "7" are one user (TRL passes an int column as ints)
    by_int = reward_function(pal, users={7: new})(prompts, completions, user_id=["7", 7.0, 7])
    assert by_int == pytest.approx(pal.score(prompts, completions, user=new).tolist())
    gpm = GPM(n_blocks=1, hidden=[], epochs=1, personalize=False).fit(
        PreferenceSet.from_rows([{"chosen_embedding": [1.0, 0.0], "rejected_embedding": [0.0, 1.0]}] * 4),
        progress=False)
    with pytest.raises(ValueError, match="no scalar reward"):
        reward_function(gpm)


def test_inside_trl_grpo(fitted, tmp_path):
    """TRL's GRPOTrainer calls the reward with the dataset's user_id column: two steps of a tiny random policy,
    every completion rewarded for its own row's user, the same numbers as ``score``, and the trainer logs them."""
    trl = pytest.importorskip("trl")
    import importlib.util
    from pathlib import Path

    from datasets import Dataset

    path = Path(__file__).resolve().parents[2] / "examples" / "grpo_for_a_user.py"
    spec = importlib.util.spec_from_file_location("grpo_for_a_user", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    tiny_policy = example.tiny_policy  # the example's offline 1-layer GPT-2

    pal, _, train, _ = fitted
    ids = sorted({r["user_id"] for r in train.rows})[:2]
    prompt = train.rows[0]["prompt"]
    reward, calls = reward_function(pal), []

    def recorded(prompts, completions, **columns):
        rewards = reward(prompts, completions, **columns)
        calls.append((list(prompts), list(completions), list(columns["user_id"]), rewards))
        return calls[-1][-1]

    recorded.__name__ = reward.__name__
    policy, tokenizer = tiny_policy()
    options = trl.GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2,
                             max_completion_length=6, max_steps=2, logging_steps=1, report_to=[], save_strategy="no",
                             seed=0, use_cpu=True)
    owner = {f"{prompt} (asked by {u})": u for u in ids}  # each row's prompt names its user
    data = Dataset.from_dict({"prompt": list(owner) * 4, "user_id": ids * 4})
    trainer = trl.GRPOTrainer(model=policy, reward_funcs=[recorded], args=options, train_dataset=data,
                              processing_class=tokenizer)
    trainer.train()
    assert len(calls) == 2
    for prompts, completions, users, rewards in calls:
        assert users == [owner[p] for p in prompts] and len(completions) == 4
        assert rewards == pytest.approx(pal.score(prompts, completions, user=users, cache=False).tolist(), abs=1e-5)
    logged = [e for e in trainer.state.log_history if "reward" in e]
    assert logged[0]["reward"] == pytest.approx(sum(calls[0][-1]) / 4, abs=1e-4)
