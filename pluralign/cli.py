"""The ``pluralign`` command: typed functions, one per subcommand, behind a thin argparse layer.

Every error a user can cause ends in one line on stderr naming what is wrong and where, and a
non-zero exit; outputs are written atomically, so a failed command leaves no half-written file.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
from pathlib import Path
from typing import Sequence

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")  # offline by default: nothing downloads at run time
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

log = logging.getLogger("pluralign")
DEFAULT_DEMO_DATA = "pets"
RUN_HELP = "a run folder written by pluralign fit"
ACTIVE_HELP = ("chosen questions: an unseen user's k context pairs are the k the model asks first, one at a time "
               "by expected information gain, not the first k in the file (bt keeps the file's order)")
DESCRIPTION = "Pluralistic alignment: reward models with a latent vector per user, few-shot adaptation to new users."
WORKFLOW = """a run, end to end:
  pluralign data build pets --out data/my-pets        (or: data convert ADAPTER FILE, then data split)
  pluralign fit vpl --data data/my-pets --out runs/vpl
  pluralign eval --run runs/vpl --data data/my-pets --out runs/vpl/eval.json
  pluralign rank --run runs/vpl --candidates cands.jsonl --pairs my_pairs.jsonl --out best.jsonl  (best-of-N for a user)
  pluralign bench --benchmarks pets cyclic --out bench  (every method, a table and few-shot curves)
COMMAND --help says more of each."""


def data_list() -> None:
    """Print the synthetic benchmarks and the dataset adapters."""
    from pluralign.data.adapters import ADAPTERS
    from pluralign.data.synthetic import BENCHMARKS

    def summary(name: str, function) -> str:
        """The docstring's first paragraph (its own, else its module's), wrapped beside NAME."""
        doc = function.__doc__ or sys.modules[function.__module__].__doc__ or ""
        text = " ".join(doc.strip().split("\n\n")[0].split()).removeprefix(f"``{name}``: ")
        return textwrap.fill(text, width=100, initial_indent=f"  {name:<20} ", subsequent_indent=" " * 23)

    print("benchmarks (pluralign data build NAME --out DIR):")
    for name, build in BENCHMARKS.items():
        print(summary(name, build))
    print("adapters (pluralign data convert NAME INPUT --out FILE):")
    for name, adapter in ADAPTERS.items():
        print(summary(name, adapter))
    print("then, for fit and eval: pluralign data split FILE --out DIR (unseen users held out whole)")


def data_build(name: str, out: str, seed: int = 0, context: str = "random", options: Sequence[str] = ()) -> None:
    """Write DIR/train.jsonl, DIR/test.jsonl and DIR/README.md for a synthetic benchmark."""
    from pluralign.config import parse_overrides
    from pluralign.data.synthetic import build_benchmark
    from pluralign.io import check_output

    check_output(out, folder=True)
    bench = build_benchmark(name, seed=seed, context=context, **parse_overrides(options))
    bench.write(out)
    print(f"wrote {out}/train.jsonl ({len(bench.train)} rows), {out}/test.jsonl ({len(bench.test)} rows)")


def data_convert(adapter: str, source: str, out: str) -> None:
    """Map a public dataset in its own format onto the contract, as JSONL."""
    from pluralign.data.adapters import ADAPTERS
    from pluralign.io import check_output, write_jsonl

    if adapter not in ADAPTERS:
        raise ValueError(f"unknown adapter {adapter!r} (known: {', '.join(ADAPTERS)})")
    check_output(out)
    data = ADAPTERS[adapter](source)
    write_jsonl(out, data.rows)
    print(f"wrote {out} ({len(data)} rows)")


def data_split(source: str, out: str, unseen_users: int | None = None, context: int = 16,
               test_fraction: float = 0.2, seed: int = 0, stratify: bool = False) -> None:
    """Split a dataset by user into DIR/train.jsonl and DIR/test.jsonl (held-out pairs of seen users; unseen
    users' context and query rows), for `fit` and `eval` on real data."""
    from pluralign.data import read_preferences
    from pluralign.data.split import split_by_user
    from pluralign.io import check_output, write_jsonl, write_text

    check_output(out, folder=True)
    data = read_preferences(source)
    split = split_by_user(data, unseen_users, context, test_fraction, seed, stratify)
    write_jsonl(Path(out) / "train.jsonl", split.train.rows)
    write_jsonl(Path(out) / "test.jsonl", split.test.rows)
    write_text(Path(out) / "README.md", split.card(source, seed, context, test_fraction, stratify))
    print(f"wrote {out}/train.jsonl ({len(split.train)} rows, {len(split.seen_users)} seen users), "
          f"{out}/test.jsonl ({len(split.test)} rows, {len(split.unseen_users)} unseen users)")


def fit(method: str, data: str, out: str, config: str | None = None, overrides: Sequence[str] = (),
        accelerator: str = "cpu", devices: str = "1", strategy: str = "auto", precision: str = "32-true",
        resume: bool = False, progress: bool = True, threads: int | None = None) -> None:
    """Train METHOD on DATA (a file, or a folder's train split) and save the run to OUT."""
    from pluralign.config import build_model, load_config, parse_overrides, preset
    from pluralign.data import read_preferences
    from pluralign.eval.protocol import diagnostic_lines
    from pluralign.io import check_output

    check_output(out, folder=True)
    # without --config, the shipped preset: the settings the README's tables were measured with
    arguments = load_config(config, method) if config else preset(method)
    arguments.update(parse_overrides(overrides))
    model = build_model(method, arguments)
    train = read_preferences(data, split="train")
    model.fit(train, out_dir=out, resume=resume, progress=progress, threads=threads, accelerator=accelerator,
              devices=int(devices) if devices.isdigit() else devices, strategy=strategy, precision=precision)
    if not model.is_global_zero_:
        return  # other DDP ranks hold the same weights; rank 0 writes the run
    model.save_pretrained(out)
    stats = model.fit_stats_
    memory = f", peak {stats['peak_memory_mb']:,.0f} MB" if "peak_memory_mb" in stats else ""
    print(f"{method}: fit {stats['n_pairs']} pairs in {stats['fit_seconds']:.1f} s "
          f"({stats['pairs_per_second']:,.0f} pairs/s{memory}); saved to {out}")
    for line in diagnostic_lines(stats):
        print(f"  {line}")


def _warn_unknown_users(model, rows) -> None:
    from pluralign.eval.protocol import unknown_users

    if unknown := unknown_users(model, rows):
        named = ", ".join(unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
        log.warning(f"{rows.source}: {len(unknown)} user(s) the run was not trained on ({named}) are scored with "
                    "the population model; to adapt to them, mark their labelled rows role=context and the rest "
                    "role=query")


def _load_run(run: str):
    from pluralign.methods import PreferenceModel

    return PreferenceModel.from_pretrained(run)


def _warn_if_no_posterior(model, active: bool) -> None:
    if active and not model.has_active_queries:
        log.warning("--active: %s has no posterior over users, so it takes the context pairs in file order",
                    model.name)


def predict(run: str, data: str, out: str, shots: int = 8, active: bool = False) -> None:
    """Write P(chosen ≻ rejected) for each scored row of DATA as JSONL (index, user_id, p_chosen); with
    --active, unseen users are adapted on the context pairs the model asks first."""
    from pluralign.data import read_preferences
    from pluralign.eval import score_rows
    from pluralign.eval.protocol import chosen_contexts
    from pluralign.io import check_output, write_jsonl

    if shots < 0:
        raise ValueError(f"--shots {shots}: must be non-negative")
    check_output(out)
    model = _load_run(run)
    rows = read_preferences(data, split="test")
    _warn_unknown_users(model, rows)
    _warn_if_no_posterior(model, active)
    indices, probs = score_rows(model, rows, shots, order=chosen_contexts(model, rows, shots) if active else None)
    users = rows.column("user_id")
    write_jsonl(out, ({"index": int(i), "user_id": users[i], "p_chosen": round(float(p), 6)}
                      for i, p in zip(indices, probs)))
    print(f"wrote {out} ({len(indices)} rows)")


def evaluate(run: str, data: str, out: str, shots: str = "0,1,2,4,8,16", plot: str | None = None,
             active: bool = False) -> None:
    """Run the evaluation protocol on DATA (a file, or a folder's test split) and write metrics JSON (with
    --plot, also the few-shot curve: unseen-user accuracy against k, the oracle dashed). With --active, each
    unseen user answers the k context pairs the model chooses to ask, one at a time, instead of the first k."""
    from pluralign.data import read_preferences
    from pluralign.eval import evaluate as run_protocol
    from pluralign.eval.protocol import summary_lines
    from pluralign.io import check_output, write_json

    try:
        ks = [int(k) for k in shots.split(",") if k.strip()]
    except ValueError:
        raise ValueError(f"--shots {shots!r}: expected comma-separated whole numbers") from None
    if any(k < 0 for k in ks):
        raise ValueError(f"--shots {shots!r}: shot counts must be non-negative")
    check_output(out)
    if plot is not None:
        check_output(plot, flag="--plot")
    model = _load_run(run)
    rows = read_preferences(data, split="test")
    _warn_unknown_users(model, rows)
    _warn_if_no_posterior(model, active)
    report = run_protocol(model, rows, shots=ks, active=active)
    write_json(out, report)
    print("\n".join(summary_lines(report)))
    print(f"wrote {out}")
    if plot is not None:
        from pluralign.eval.plots import plot_few_shot

        plot_few_shot({Path(data).name if Path(data).is_dir() else Path(data).stem: {model.name: report}}, plot)
        print(f"wrote {plot}")


def compare(runs: Sequence[str], data: str, out: str, shots: int = 8, active: bool = False) -> None:
    """Two runs on the same rows of DATA: each one's accuracy and their difference with a 95% interval over
    the users (paired, so it needs no oracle: the interval real data gets). With --active, each run asks its
    own questions of the unseen users' context pairs."""
    from pluralign.data import read_preferences
    from pluralign.eval.compare import compare as paired
    from pluralign.io import check_output, write_json

    if len(runs) != 2:
        raise ValueError(f"--runs: give two runs to compare, got {len(runs)}")
    if shots < 0:
        raise ValueError(f"--shots {shots}: must be non-negative")
    check_output(out)
    model_a, model_b = _load_run(runs[0]), _load_run(runs[1])
    rows = read_preferences(data, split="test")
    report = {"run_a": runs[0], "run_b": runs[1], **paired(model_a, model_b, rows, shots, active)}
    write_json(out, report)
    for name, label in (("seen", "seen users"), ("unseen", f"unseen users at k = {shots}")):
        if name in report:
            r = report[name]
            interval = f" ± {196 * r['difference_se']:.1f}" if "difference_se" in r else ""
            print(f"{label} ({r['users']} users, {r['n']} pairs): {model_a.name} {r['accuracy_a']:.3f}, "
                  f"{model_b.name} {r['accuracy_b']:.3f}, difference {100 * r['difference']:+.1f}{interval} points"
                  + (" (95%)" if interval else ""))
    print(f"wrote {out}")


def users(run: str, data: str, out: str, shots: int = 8) -> None:
    """Map the user vectors by group: seen users' learned vectors, unseen users' inferred from SHOTS context
    pairs; writes OUT (PNG) and the vectors beside it (OUT with .json)."""
    from pluralign.data import read_preferences
    from pluralign.eval.user_map import plot_user_map, type_recovery, user_vectors
    from pluralign.io import check_output, write_json

    if shots < 0:
        raise ValueError(f"--shots {shots}: must be non-negative")
    check_output(out)
    check_output(Path(out).with_suffix(".json"))
    model = _load_run(run)
    records = user_vectors(model, read_preferences(data, split="test"), shots)
    recovery = type_recovery(records)
    title = f"{model.name}: unseen users from {shots} context pairs"
    if recovery is not None:
        title += f"\n{recovery:.0%} of them nearest their own group's seen users"
    plot_user_map(records, out, title)
    vectors = Path(out).with_suffix(".json")
    write_json(vectors, {"method": model.name, "shots": shots, "type_recovery": recovery, "users": records})
    print(f"wrote {out} and {vectors} ({len(records)} users" +
          (f"; type recovery {recovery:.0%})" if recovery is not None else ")"))


def adapt(run: str, pairs: str, out: str, active: str | None = None, queries: int = 4) -> None:
    """Infer a new user's vector from their labelled pairs; with --active, also rank a pool of
    unlabelled candidate pairs by how much their answer would tell about the user."""
    from pluralign.data import read_preferences
    from pluralign.io import check_output, write_json

    check_output(out)
    if active and queries < 1:
        raise ValueError(f"--queries must be at least 1, got {queries}")
    model = _load_run(run)
    if active and not model.has_active_queries:
        raise ValueError(f"--active: method {model.name!r} has no posterior over users to choose questions by "
                         "(every method but bt has one)")
    labelled = read_preferences(pairs)
    users = sorted({str(u) for u in labelled.column("user_id") if u is not None})
    if len(users) > 1:
        log.warning("%s holds the pairs of %d users (%s, ...): they are read as one user's", pairs, len(users),
                    ", ".join(users[:3]))
    vector = model.infer_user(labelled)
    result = vector.to_dict()
    if active:
        pool = read_preferences(active)
        result["next_queries"] = [int(i) for i in model.select_queries(pool, queries, context=labelled)]
    write_json(out, result)
    print(f"wrote {out} (user from {vector.n_pairs} pairs)")
    if active:
        print(f"ask next, most informative first: rows {', '.join(map(str, result['next_queries']))} of {active} "
              "(0-based; next_queries in the JSON)")


def rank(run: str, candidates: str, out: str, user: str | None = None, pairs: str | None = None,
         egalitarian: bool = False) -> None:
    """Best-of-N for a user: score each prompt's candidate responses with the run's reward for the user (a
    known id, a record's user_id, or a new user inferred from --pairs) and keep the best. Writes JSONL:
    prompt, best (its index), response, rewards."""
    from pluralign.data import read_preferences
    from pluralign.data.readers import read_candidates
    from pluralign.io import check_output, write_jsonl
    from pluralign.methods.reward_function import reward_function

    check_output(out)
    if user is not None and pairs is not None:
        raise ValueError("--user and --pairs: give one (a known user's id, or a new user's labelled pairs)")
    if egalitarian and (user is not None or pairs is not None):
        raise ValueError("--egalitarian ranks for every group at once: it takes no --user or --pairs")
    model = _load_run(run)
    records = read_candidates(candidates)
    vector = model.infer_user(read_preferences(pairs)) if pairs is not None else None
    score = reward_function(model, user=vector if vector is not None else user, egalitarian=egalitarian)
    columns = {}
    if user is None and pairs is None and any("user_id" in r for r in records):
        columns["user_id"] = [r.get("user_id") for r in records for _ in r["responses"]]  # each record's own user
    rewards = score([r["prompt"] for r in records for _ in r["responses"]],
                    [response for r in records for response in r["responses"]], **columns)
    ranked, start = [], 0
    for r in records:
        mine = rewards[start:start + len(r["responses"])]
        start += len(r["responses"])
        best = max(range(len(mine)), key=mine.__getitem__)
        ranked.append({**r, "best": best, "response": r["responses"][best], "rewards": [round(x, 6) for x in mine]})
    write_jsonl(out, ranked)
    if egalitarian:
        who = "the worst-off group"
    elif vector is not None:
        who = f"a new user from {vector.n_pairs} pairs"
    else:
        who = f"user {user}" if user is not None else "each record's user_id" if columns else "the population"
    print(f"wrote {out} ({len(records)} prompts, {len(rewards)} responses ranked for {who})")


def bench(methods: Sequence[str] | None, benchmarks: Sequence[str] | None, out: str,
          seeds: Sequence[int] = (0,), context: str = "random", overrides: Sequence[str] = (), jobs: int = 1,
          data_options: Sequence[str] = (), save_runs: bool = False, resume: bool = False, active: bool = False
          ) -> None:
    """Every method on every benchmark (a synthetic one, or a folder of train and test files such as `data split`
    writes), and the Bayes few-shot ceiling where there is one: results.md, results.json, few_shot.png, gaps.png."""
    from pluralign.config import parse_method_overrides, parse_overrides
    from pluralign.data.synthetic import BENCHMARKS, check_options
    from pluralign.eval.bench import run_bench_seeds
    from pluralign.io import check_output
    from pluralign.methods import METHODS
    from pluralign.provenance import resumable_record, write_run_record

    methods = list(methods or METHODS)
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r} (known: {', '.join(METHODS)})")
    built = parse_overrides(data_options)
    if "context" in built:
        raise ValueError("--data-set context=...: use --context")
    folders = [name for name in benchmarks or () if name not in BENCHMARKS and Path(name).is_dir()]
    for name in benchmarks or BENCHMARKS:
        if name in folders:  # real data, split: the bench reads every column before its first fit
            continue
        if name not in BENCHMARKS and ("/" in name or os.sep in name):
            raise ValueError(f"--benchmarks {name}: no such folder (an entry is a synthetic benchmark, or a "
                             "folder of train and test files such as pluralign data split writes)")
        check_options(name, built)  # an unknown benchmark, or an option one lacks, stops here
    if folders and (built or context != "random"):
        log.warning("--context and --data-set build synthetic benchmarks; these folders are read as they stand: "
                    + ", ".join(folders))
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds must be distinct non-negative integers, got {list(seeds)}")
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    check_output(out, folder=True)
    per_method = parse_method_overrides(overrides, methods)
    arguments = dict(methods=methods, benchmarks=list(benchmarks or BENCHMARKS), seeds=list(seeds), context=context,
                     overrides=list(overrides), data_options=list(data_options), jobs=jobs, save_runs=save_runs,
                     **({"active": True} if active else {}))  # runs recorded before --active existed resume
    resumes = resumable_record(out, arguments) if resume else None
    write_run_record(out, "bench", resumes=resumes, **arguments)
    run_bench_seeds(methods, list(benchmarks or BENCHMARKS), out, seeds=list(seeds), context=context,
                    overrides=per_method, jobs=jobs, data_options=built, save_runs=save_runs, resume=resume,
                    active=active)
    print((Path(out) / "results.md").read_text())


def demo(out: str = "demo", methods: Sequence[str] | None = None) -> None:
    """The main job: every method on the shipped default data (data/pets), a table and a plot."""
    from pluralign.data import read_preferences
    from pluralign.data.synthetic import build_benchmark
    from pluralign.eval.bench import benchmark_data, run_bench
    from pluralign.eval.ceiling import bayes_few_shot
    from pluralign.io import check_output
    from pluralign.methods import METHODS
    from pluralign.provenance import write_run_record

    check_output(out, folder=True)
    shipped = Path(__file__).resolve().parent.parent / "data" / DEFAULT_DEMO_DATA
    if (shipped / "train.jsonl").exists():
        datasets = {DEFAULT_DEMO_DATA: (read_preferences(shipped, "train"), read_preferences(shipped, "test"))}
    else:  # an installed package without the checkout: build the same data (deterministic)
        datasets = {DEFAULT_DEMO_DATA: benchmark_data(DEFAULT_DEMO_DATA, 0)}
    # the shipped rows are the seed-0 build: its generator's prior gives their Bayes few-shot ceiling
    prior = build_benchmark(DEFAULT_DEMO_DATA, seed=0).prior
    ceiling = bayes_few_shot(prior, datasets[DEFAULT_DEMO_DATA][1].rows)
    write_run_record(out, "demo", methods=list(methods or METHODS), data=str(shipped))
    run_bench(list(methods or METHODS), datasets, out, ceilings={DEFAULT_DEMO_DATA: ceiling})
    print((Path(out) / "results.md").read_text())
    print(f"plots: {out}/few_shot.png and {out}/gaps.png, table: {out}/results.md, all figures: {out}/results.json, "
          f"what made them: {out}/run.json")


def _command(commands, name: str, function) -> argparse.ArgumentParser:
    """A subcommand whose help is FUNCTION's docstring: its first sentence in the list, all of it under
    ``--help`` (argparse reads help text as %-format, so a literal % is doubled)."""
    doc = " ".join((function.__doc__ or "").split())
    return commands.add_parser(name, help=doc.split(". ")[0].rstrip(".").replace("%", "%%"), description=doc)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pluralign", description=DESCRIPTION, epilog=WORKFLOW,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="benchmarks and dataset adapters", description="Benchmarks and "
                               "dataset adapters: list them, build a benchmark, convert a dataset, split it by user")
    data = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    _command(data, "list", data_list)
    p = _command(data, "build", data_build)
    p.add_argument("name", help="a synthetic benchmark (pluralign data list)")
    p.add_argument("--out", required=True, help="folder for train.jsonl, test.jsonl and README.md")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--context", choices=["random", "survey"], default="random",
                   help="unseen users' context pairs: like any pair, or controversial only (VPL's survey protocol)")
    p.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="a keyword of the benchmark's builder, e.g. --set n_users=64 (data/DATASHEET.md)")
    p = _command(data, "convert", data_convert)
    p.add_argument("adapter", help="prism, tldr, psoups, ultrafeedback, personalllm or pickapic")
    p.add_argument("source", help="the dataset as downloaded: a file, or a folder saved by datasets")
    p.add_argument("--out", required=True, help="a JSONL file of contract rows")
    p = _command(data, "split", data_split)
    p.add_argument("source", help="a file of contract rows with user ids (what data convert writes)")
    p.add_argument("--out", required=True, help="folder for train.jsonl, test.jsonl and README.md")
    p.add_argument("--unseen-users", dest="unseen_users", type=int,
                   help="users held out whole, for few-shot evaluation (default: a tenth of those with enough pairs)")
    p.add_argument("--context", type=int, default=16, help="each unseen user's context pairs (adapt on the first k)")
    p.add_argument("--test-fraction", dest="test_fraction", type=float, default=0.2,
                   help="each seen user's pairs held out for the test split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stratify", action="store_true",
                   help="draw the unseen users group by group (the group column), so every group has some")

    p = _command(commands, "fit", fit)
    p.add_argument("method", help="bt, pal-a, pal-b, vpl, micro, gpm or maxmin")
    p.add_argument("--data", required=True, help="a JSONL/CSV/Parquet file, or a folder with train.jsonl")
    p.add_argument("--out", required=True, help="the run's folder: config, weights, fit statistics")
    p.add_argument("--config", help="YAML preset of constructor arguments (default: the shipped models/METHOD.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one constructor argument, e.g. --set epochs=5")
    p.add_argument("--accelerator", default="cpu", help="Lightning accelerator: cpu, gpu, auto, ...")
    p.add_argument("--devices", default="1", help="how many devices (or which), as Lightning takes it")
    p.add_argument("--strategy", default="auto", help="auto, ddp, ddp_spawn, fsdp, ...")
    p.add_argument("--precision", default="32-true", help="Lightning precision, e.g. bf16-mixed")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--threads", type=int, help="torch CPU threads (1 is fastest for small heads when jobs share cores)")

    p = _command(commands, "predict", predict)
    p.add_argument("--run", required=True, help=RUN_HELP)
    p.add_argument("--data", required=True, help="rows to score: a file, or a folder's test split")
    p.add_argument("--out", required=True, help="JSONL, one probability per scored row")
    p.add_argument("--shots", type=int, default=8, help="context pairs an unseen user is adapted on")
    p.add_argument("--active", action="store_true", help=ACTIVE_HELP)

    p = _command(commands, "eval", evaluate)
    p.add_argument("--run", required=True, help=RUN_HELP)
    p.add_argument("--data", required=True, help="a file, or a folder's test split")
    p.add_argument("--out", required=True, help="metrics JSON")
    p.add_argument("--shots", default="0,1,2,4,8,16", help="the few-shot k to score unseen users at, comma-separated")
    p.add_argument("--plot", help="also draw the few-shot curve to this PNG")
    p.add_argument("--active", action="store_true", help=ACTIVE_HELP)

    p = _command(commands, "adapt", adapt)
    p.add_argument("--run", required=True, help=RUN_HELP)
    p.add_argument("--pairs", required=True, help="the new user's labelled pairs (prompt, chosen, rejected)")
    p.add_argument("--out", required=True, help="JSON: the user's vector (mean, and variance where the method has one)")
    p.add_argument("--active", metavar="POOL", help="file of unlabelled candidate pairs to rank by what their "
                   "answer would tell (every method but bt)")
    p.add_argument("--queries", type=int, default=4, help="how many pairs to pick from POOL")

    p = _command(commands, "rank", rank)
    p.add_argument("--run", required=True, help=RUN_HELP)
    p.add_argument("--candidates", required=True,
                   help="JSONL, JSON or Parquet: a record per prompt with 'prompt', 'responses' [, 'user_id']")
    p.add_argument("--out", required=True, help="JSONL: each record with the best response, its index and every reward")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--user", help="a user the run was trained on")
    who.add_argument("--pairs", help="a new user's labelled pairs: their vector is inferred first")
    p.add_argument("--egalitarian", action="store_true",
                   help="MaxMin only: rank by the worst-off group's reward instead of one user's")

    p = _command(commands, "compare", compare)
    p.add_argument("--runs", nargs="+", required=True, metavar="RUN", help="two saved runs: A and B")
    p.add_argument("--data", required=True, help="a file, or a folder's test split")
    p.add_argument("--shots", type=int, default=8, help="context pairs an unseen user is adapted on")
    p.add_argument("--out", required=True, help="JSON: accuracies, the difference and its interval")
    p.add_argument("--active", action="store_true", help=ACTIVE_HELP)

    p = _command(commands, "bench", bench)
    p.add_argument("--methods", nargs="+", help="default: every method")
    p.add_argument("--benchmarks", nargs="+",
                   help="synthetic benchmarks (default: all), or folders of train and test files (pluralign data split)")
    p.add_argument("--out", required=True, help="folder for results.md, results.json, few_shot.png and gaps.png")
    p.add_argument("--seeds", "--seed", dest="seeds", type=int, nargs="+", default=[0],
                   help="one seed, or several for mean ± sd (each seeds the benchmark and the models)")
    p.add_argument("--context", choices=["random", "survey"], default="random",
                   help="unseen users' context pairs: like any pair, or controversial only (VPL's survey protocol)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="[METHOD.]KEY=VALUE",
                   help="override a preset argument of one method (pal-a.k=4) or of every method (epochs=5)")
    p.add_argument("--jobs", type=int, default=1,
                   help="fit this many (seed, benchmark, method) cells at once, one process and one thread each")
    p.add_argument("--data-set", dest="data_options", action="append", default=[], metavar="KEY=VALUE",
                   help="a keyword of every benchmark's builder, e.g. n_unseen_users=48 (data/DATASHEET.md)")
    p.add_argument("--save-runs", dest="save_runs", action="store_true",
                   help="save each fitted model to OUT/runs/BENCHMARK/METHOD, for pluralign compare")
    p.add_argument("--resume", action="store_true",
                   help="keep the cells an interrupted bench in OUT finished (same options) and fit the rest")
    p.add_argument("--active", action="store_true", help=ACTIVE_HELP)

    p = _command(commands, "users", users)
    p.add_argument("--run", required=True, help=RUN_HELP)
    p.add_argument("--data", required=True, help="rows with user ids (a file, or a folder's test split)")
    p.add_argument("--out", required=True, help="the map, a PNG")
    p.add_argument("--shots", type=int, default=8, help="context pairs an unseen user's vector is inferred from")
    p = _command(commands, "demo", demo)
    p.add_argument("--out", default="demo", help="folder for the table and the plot")
    p.add_argument("--methods", nargs="+", help="default: every method")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    debug = args.pop("debug")
    command = args.pop("command")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("lightning").propagate = False  # it has its own console handler: each line once
    if command == "data":
        command = f"data_{args.pop('data_command')}"
    handler = {"eval": evaluate}.get(command) or globals()[command]
    try:
        handler(**args)
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly, as a shell tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 1
    except (ValueError, KeyError, TypeError, OSError, RuntimeError) as err:
        if debug:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        if isinstance(err, OSError) and err.strerror and err.filename:  # not "[Errno 13] ...": the path first
            message = f"{err.filename}: {err.strerror}"
        print(f"pluralign: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
