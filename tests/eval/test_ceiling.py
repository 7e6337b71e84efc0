"""The Bayes few-shot ceiling (pluralign.eval.ceiling) and each synthetic benchmark's prior over users."""

import numpy as np
import pytest

from pluralign.data.synthetic import BENCHMARKS, build_benchmark
from pluralign.eval.bench import benchmark_ceiling
from pluralign.eval.ceiling import bayes_few_shot, chosen_order, posterior_predictive
from pluralign.data.synthetic._common import UserPrior

SMALL = dict(n_users=6, n_unseen_users=4, pairs_per_user=12, test_pairs_per_user=3)


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_prior_reproduces_the_oracle(name):
    """The prior's rewards are the generator's: every query row's oracle_p is some prior user's P(c ≻ r)
    (exactly for user types; within Monte Carlo reach for Dirichlet users)."""
    bench = build_benchmark(name, seed=1, **SMALL)
    rows = [r for r in bench.test if r.get("role") == "query"]
    probs = 1 / (1 + np.exp(-bench.prior.logits(bench.prior.params, rows)))  # [users, rows]
    nearest = np.abs(probs - np.array([r["oracle_p"] for r in rows])).min(0)
    continuous = len(bench.prior.params) > 100
    assert nearest.max() < (0.05 if continuous else 1e-5)


def test_posterior_predictive_by_hand():
    """Two users with logits +2 / −2 on every pair, equal prior: one context pair won by `chosen` gives
    posterior σ(2) : σ(−2), and the predictive is the posterior mix of σ(±2)."""
    prior = UserPrior(np.array([1.0, -1.0]), lambda s, rows: np.outer(s, np.full(len(rows), 2.0)))
    s2 = 1 / (1 + np.exp(-2.0))
    post = np.array([s2, 1 - s2])
    expected = post[0] * s2 + post[1] * (1 - s2)
    assert posterior_predictive(prior, [{}], [{}])[0] == pytest.approx(expected / post.sum(), abs=1e-8)
    assert posterior_predictive(prior, [], [{}])[0] == 0.5  # no context: a tie, scored as a coin flip
    weighted = UserPrior(prior.params, prior.logits, log_weights=np.log([3.0, 1.0]))
    assert posterior_predictive(weighted, [], [{}])[0] == pytest.approx(0.75 * s2 + 0.25 * (1 - s2), abs=1e-8)


def test_a_prompt_that_names_its_user_is_evidence_of_the_ceiling() -> None:
    """``attributes`` with prompt_hints: a prompt ending in the length user's hint is that user's (P = h), a
    prompt without one any user's (1 − h). The ceiling conditioned on the labels alone was beaten by a rule that
    reads the prompt (0.878 against 0.695 at k = 0, with every prompt hinted)."""
    from pluralign.data.synthetic.attributes import HINTS, hint_log_likelihood
    from pluralign.data.text_attributes import ATTRIBUTES

    types = np.eye(4)
    hinted, plain = {"prompt": f"Q {HINTS[ATTRIBUTES[0]]}"}, {"prompt": "Q"}
    log_likelihood = hint_log_likelihood(0.25)(types, [hinted, plain])
    assert log_likelihood[:, 0].tolist() == [np.log(0.25)] + [-np.inf] * 3
    assert log_likelihood[:, 1] == pytest.approx([np.log(0.75)] * 4)
    logits = np.array([[3.0], [-1.0], [-1.0], [-1.0]])  # only the length user prefers chosen
    prior = UserPrior(types, lambda w, rows: np.repeat(logits, len(rows), 1), names=tuple(ATTRIBUTES),
                      prompt_log_likelihood=hint_log_likelihood(0.25))
    s = 1 / (1 + np.exp(-logits[:, 0]))
    assert posterior_predictive(prior, [], [hinted, plain]) == pytest.approx([s[0], s.mean()], abs=1e-8)
    assert posterior_predictive(prior, [hinted], [plain])[0] == pytest.approx(s[0], abs=1e-8)  # the context's too
    bench = build_benchmark("attributes", seed=0, prompt_hints=1.0, **SMALL)
    unseen = bayes_few_shot(bench.prior, bench.test, shots=(0,))["unseen"]["0"]
    assert unseen["accuracy"] == unseen["oracle_accuracy"]  # every prompt names its user


def test_ceiling_is_below_the_oracle_and_grows_with_k():
    ceiling = benchmark_ceiling("pets", 0, context="survey")
    unseen = ceiling["unseen"]
    assert unseen["16"]["accuracy"] == pytest.approx(unseen["16"]["oracle_accuracy"])  # 16 survey pairs tell
    assert unseen["0"]["accuracy"] < unseen["4"]["accuracy"] <= unseen["16"]["accuracy"]
    assert set(unseen["8"]) >= {"accuracy", "oracle_accuracy", "controversial"}
    # the same rows read back from disk give the same figures
    bench = build_benchmark("pets", seed=0, context="survey")
    assert bayes_few_shot(bench.prior, [dict(r) for r in bench.test]) == ceiling


def test_the_bayes_learner_asks_its_own_questions():
    """Two users with opposite logits on pair 1 and equal ones on pair 0: pair 1 is asked first. With chosen
    questions on a benchmark, all 16 context pairs give the file order's figure, and 2 chosen ones beat 2 given."""
    prior = UserPrior(np.array([1.0, -1.0]), lambda s, rows: np.outer(s, [r["slope"] for r in rows]))
    assert chosen_order(prior, [{"slope": 0.0}, {"slope": 3.0}, {"slope": 1.0}], 3) == [1, 2, 0]
    bench = build_benchmark("attributes", seed=0)
    given, chosen = bayes_few_shot(bench.prior, bench.test), bayes_few_shot(bench.prior, bench.test, active=True)
    assert chosen["questions"] == "chosen"
    assert chosen["unseen"]["16"]["accuracy"] == pytest.approx(given["unseen"]["16"]["accuracy"], abs=1e-9)
    assert chosen["unseen"]["2"]["accuracy"] > given["unseen"]["2"]["accuracy"]


def test_the_bayes_learner_reads_the_prompts_of_its_questions() -> None:
    """Question 0's prompt names the length user, who (with the verbosity user) prefers its chosen response:
    once asked, its answer leaves two users and its prompt one, so nothing is left to ask and the next questions
    keep the pool's order. The old order read the answer alone and asked question 2, which splits the two."""
    from pluralign.data.synthetic.attributes import HINTS, hint_log_likelihood
    from pluralign.data.text_attributes import ATTRIBUTES

    pool = [{"prompt": f"Q {HINTS[ATTRIBUTES[0]]}", "l": [3.0, 3.0, -3.0, -3.0]},
            {"prompt": "Q", "l": [0.0, 0.0, 3.0, -3.0]},
            {"prompt": "Q", "l": [3.0, -3.0, 0.0, 0.0]}]
    prior = UserPrior(np.eye(4), lambda w, rows: np.array([r["l"] for r in rows]).T, names=tuple(ATTRIBUTES),
                      prompt_log_likelihood=hint_log_likelihood(0.25))
    assert chosen_order(prior, pool, 3) == [0, 1, 2]
    assert chosen_order(UserPrior(np.eye(4), prior.logits), pool, 3) == [0, 2, 1]  # without hints: split them


def test_the_ceiling_by_hand_at_each_k() -> None:
    """Two users with logits ±2 · slope: the posterior multiplies each context pair's likelihood (the sum of their
    logs, not the mean); k = 0 reads no context (a tie: half a hit), k = 1 the first pair only."""
    prior = UserPrior(np.array([1.0, -1.0]), lambda s, rows: np.outer(s, [r["slope"] for r in rows]))
    s = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    two = [{"slope": 2.0}, {"slope": 2.0}]
    post = np.array([s(2) ** 2, s(-2) ** 2]) / (s(2) ** 2 + s(-2) ** 2)
    assert posterior_predictive(prior, two, [{"slope": 1.0}])[0] == pytest.approx(post @ [s(1), s(-1)], abs=1e-8)
    rows = [{"user_id": "u", "role": "context", "slope": 2.0}, {"user_id": "u", "role": "context", "slope": -9.0},
            {"user_id": "u", "role": "query", "slope": 1.0, "oracle_p": s(1)}]
    unseen = bayes_few_shot(prior, rows, shots=(0, 1, 2))["unseen"]
    assert [unseen[k]["accuracy"] for k in ("0", "1", "2")] == [0.5, 1.0, 0.0]  # the second pair flips the user


def test_the_bayes_learner_weighs_its_prior() -> None:
    """Question 0 tells user 0 from the others, question 1 user 1 from user 2: with user 0 nearly ruled out by the
    prior's weights, question 1 is the one to ask first."""
    logits = lambda w, rows: np.array([r["l"] for r in rows]).T  # noqa: E731
    pool = [{"l": [5.0, -5.0, -5.0]}, {"l": [0.0, 5.0, -5.0]}]
    assert chosen_order(UserPrior(np.eye(3), logits), pool, 2) == [0, 1]
    assert chosen_order(UserPrior(np.eye(3), logits, log_weights=np.log([1e-3, 0.5, 0.5])), pool, 2) == [1, 0]


def test_script_puts_the_ceiling_beside_bench_results(tmp_path, benchmark_script):
    module = benchmark_script("few_shot_bound")
    results = module.main(["--benchmarks", "pets", "--seeds", "0", "1", "--contexts", "survey",
                           "--methods", str(tmp_path / "none-{context}.json"), "--out", str(tmp_path)])
    assert results["pets"]["survey"]["mean"]["unseen"]["8"]["accuracy"] > 0.8
    assert (tmp_path / "results.md").read_text().startswith("| benchmark | contexts |")


def test_target_reach_counts_the_seed_triples_a_perfect_model_meets(tmp_path, benchmark_script):
    module = benchmark_script("target_reach")
    results = module.main(["--benchmarks", "pets", "--seeds", "0", "1", "2", "--contexts", "survey",
                           "--out", str(tmp_path)])["pets"]["survey"]
    ceiling = bayes_few_shot(build_benchmark("pets", seed=1, context="survey").prior,
                             build_benchmark("pets", seed=1, context="survey").test)["unseen"]["8"]["controversial"]
    assert results["gap_points"][1] == pytest.approx(100 * (ceiling["oracle_accuracy"] - ceiling["accuracy"]), abs=0.01)
    met = sum(results["gap_points"]) / 3 <= 3.0  # one triple of three seeds
    assert results["share_met"] == float(met)
    assert "| pets | controversial | survey | 3 |" in (tmp_path / "results.md").read_text()


def test_target_reach_passes_builder_options_and_names_them(tmp_path, benchmark_script):
    module = benchmark_script("target_reach")
    results = module.main(["--benchmarks", "pets", "--seeds", "0", "1", "2", "--contexts", "survey",
                           "--set", "n_unseen_users=3", "--out", str(tmp_path)])
    bench = build_benchmark("pets", seed=2, context="survey", n_unseen_users=3)
    ceiling = bayes_few_shot(bench.prior, bench.test)["unseen"]["8"]["controversial"]
    assert results["pets"]["survey"]["gap_points"][2] == pytest.approx(
        100 * (ceiling["oracle_accuracy"] - ceiling["accuracy"]), abs=0.01)
    assert results["data_options"] == {"n_unseen_users": 3}
    assert "3 unseen users each" in (tmp_path / "results.md").read_text()
    with pytest.raises(SystemExit):
        module.main(["--set", "n_unseen_users", "--out", str(tmp_path)])
