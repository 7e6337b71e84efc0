"""``pluralign fit | predict | eval | compare | users | adapt | rank``: a saved run, from training to use."""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from pathlib import Path
from typing import Iterator, Sequence

from pluralign.io import counted

log = logging.getLogger("pluralign")


def fit(method: str, data: str, out: str, config: str | None = None, overrides: Sequence[str] = (),
        accelerator: str = "cpu", devices: str = "1", strategy: str = "auto", precision: str = "32-true",
        resume: bool = False, progress: bool = True, threads: int | None = None) -> None:
    """Train METHOD on DATA (a file, or a folder's train split) and save the run to OUT."""
    from pluralign.config import build_model, load_config, parse_overrides, preset
    from pluralign.data import read_preferences
    from pluralign.eval.protocol import diagnostic_lines
    from pluralign.io import check_output
    from pluralign.methods.base import TrainingDiverged
    from pluralign.training import TrainerOptions, check_trainer_options

    check_output(out, folder=True, inputs=[("--data", data), ("--config", config)])
    # without --config, the shipped preset: the settings the README's tables were measured with
    arguments = load_config(config, method) if config else preset(method)
    arguments.update(parse_overrides(overrides))
    model = build_model(method, arguments)
    options = TrainerOptions(accelerator=accelerator, devices=int(devices) if devices.isdigit() else devices,
                             strategy=strategy, precision=precision, out_dir=out, resume=resume, progress=progress,
                             threads=threads)
    check_trainer_options(options)  # a missing GPU stops here, not after the embedding
    options.check_folder()  # another tool's model or Lightning project (model.fit checks too, for Python callers)
    if resume and not any(options.checkpoint_dir().rglob("last.ckpt")):  # any stage's (MaxMin: pooled/, em0/, ...)
        log.warning("--resume: no checkpoint at %s; training from the start", options.checkpoint_dir() / "last.ckpt")
    train = read_preferences(data, split="train")
    created, started = not Path(out).exists(), time.time()
    try:
        model.fit(train, trainer=options)
    except KeyboardInterrupt:
        # this fit's checkpoint (or, with --resume, the one it goes on from): not an earlier fit's, which a fresh
        # fit clears only after its embedding
        if any(resume or p.stat().st_mtime >= started for p in options.checkpoint_dir().rglob("last.ckpt")):
            raise KeyboardInterrupt(f"{options.checkpoint_dir()} keeps the last finished epoch: the same command "
                                    "with --resume goes on from there") from None
        raise
    except TrainingDiverged:  # no folder of logs that looks like a run (an interrupted one keeps its checkpoint)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    if not model.is_global_zero_:
        return  # other DDP ranks hold the same weights; rank 0 writes the run
    model.save_pretrained(out)
    stats = model.fit_stats_
    if stats.get("epochs") == 0:  # a --resume of a finished fit: no figures to give ("0 pairs/s")
        print(f"{method}: nothing left to train; saved to {out}")
        return
    memory = f", peak {stats['peak_memory_mb']:,.0f} MB" if "peak_memory_mb" in stats else ""
    print(f"{method}: fit {counted(stats['n_pairs'], 'pair')} in {stats['fit_seconds']:.1f} s "
          f"({stats['pairs_per_second']:,.0f} pairs/s{memory}); saved to {out}")
    for line in diagnostic_lines(stats):
        print(f"  {line}")


def _warn_about_users(rows, *models) -> None:
    """Rows a run scores otherwise than their role or user id suggests; each warning once, however many runs."""
    from pluralign.eval.protocol import named, unknown_users, unseen_rows

    warnings: dict[str, None] = {}
    unseen = set(unseen_rows(rows)[1])
    for model in models:
        if trained := sorted(unseen & set(model.user_ids_)):
            warnings[f"{rows.source}: query rows of {len(trained)} user(s) the run was trained on ({trained[0]}, "
                     "...) are scored as unseen users, adapted on their context rows; leave the role out to score "
                     "them with their learned vectors"] = None
        if unknown := unknown_users(model, rows):
            warnings[f"{rows.source}: {len(unknown)} user(s) the run was not trained on ({named(unknown)}) are "
                     "scored with the population model; to adapt to them, mark their labelled rows role=context "
                     "and the rest role=query"] = None
        # a null user_id means no user (README): a personalized run scores such rows with no user's vector
        if model.check_fitted().user_dim and (anonymous := sum(u is None for u in rows.column("user_id"))):
            warnings[f"{rows.source}: {anonymous} row(s) without a user_id are scored with {model.name}'s "
                     "population model, and counted as no user"] = None
    for warning in warnings:
        log.warning(warning)


@contextlib.contextmanager
def _removed_on_failure(written: str | Path | None) -> Iterator[None]:
    """A file just written is removed where the one written after it fails: a command's outputs are all or none."""
    try:
        yield
    except BaseException:
        if written is not None:
            Path(written).unlink(missing_ok=True)
        raise


def _load_run(run: str):
    from pluralign.methods import PreferenceModel

    return PreferenceModel.from_pretrained(run)


def _require_user_vector(model, run: str, what: str) -> None:
    """Refuse a user's vector where the method has none (bt: one reward for everyone), rather than claim a user
    was inferred from pairs that change nothing."""
    if model.check_fitted().user_dim == 0:
        raise ValueError(f"{model.name} has no user vector: {run} scores every user with one reward, so {what} "
                         "(a personalized method has one: pal-a, vpl, ...)")


def _require_scored_rows(indices, data: str) -> None:
    if not len(indices):
        raise ValueError(f"{data}: no query rows to score (only context rows, which adapt unseen users; mark the "
                         "rows to score role=query, or leave the role out for seen users)")


def _read_rows(data: str, split: str, *models):
    """DATA's rows, of the kind (text or embeddings) the run(s) were fitted on: the other kind is one line here,
    before any warning about the rows."""
    from pluralign.data import read_preferences

    rows = read_preferences(data, split=split)
    for model in models:
        model.check_rows_kind(rows)
    return rows


def _warn_if_no_posterior(model, active: bool) -> None:
    if active and not model.has_active_queries:
        log.warning("--active: %s has no posterior over users, so it takes the context pairs in file order",
                    model.name)


def predict(run: str, data: str, out: str, shots: int = 8, active: bool = False) -> None:
    """Write P(chosen ≻ rejected) for each scored row of DATA as JSONL (index: the row's 0-based place among the
    rows, user_id, p_chosen); with --active, unseen users are adapted on the context pairs the model asks first."""
    from pluralign.eval import score_rows
    from pluralign.eval.protocol import warn_short_contexts
    from pluralign.io import check_output, write_jsonl

    if shots < 0:
        raise ValueError(f"--shots {shots}: must be non-negative")
    check_output(out, inputs=[("--data", data), ("--run", run)], suffix=".jsonl")
    model = _load_run(run)
    rows = _read_rows(data, "test", model)
    _warn_about_users(rows, model)
    _warn_if_no_posterior(model, active)
    warn_short_contexts(rows, [shots])
    indices, probs = score_rows(model, rows, shots, active=active, progress=True)
    _require_scored_rows(indices, rows.source or data)
    users = rows.column("user_id")
    write_jsonl(out, ({"index": int(i), "user_id": users[i], "p_chosen": round(float(p), 6)}
                      for i, p in zip(indices, probs)))
    print(f"wrote {out} ({counted(len(indices), 'row')})")


def evaluate(run: str, data: str, out: str, shots: str | Sequence[str] = "0,1,2,4,8,16", plot: str | None = None,
             active: bool = False) -> None:
    """Run the evaluation protocol on DATA (a file, or a folder's test split) and write metrics JSON (with
    --plot, also the few-shot curve: unseen-user accuracy against k, the oracle dashed). With --active, each
    unseen user answers the k context pairs the model chooses to ask, one at a time, instead of the first k."""
    from pluralign.eval import evaluate as run_protocol
    from pluralign.eval.protocol import summary_lines, unseen_rows
    from pluralign.io import check_output, write_json

    shots = shots if isinstance(shots, str) else ",".join(shots)  # --shots 0 4 8 as the other commands' lists
    try:
        ks = [int(k) for k in shots.split(",") if k.strip()]
    except ValueError:
        raise ValueError(f"--shots {shots!r}: expected comma-separated whole numbers") from None
    if not ks:
        raise ValueError(f"--shots {shots!r}: give at least one shot count, e.g. --shots 0,4,8")
    if any(k < 0 for k in ks):
        raise ValueError(f"--shots {shots!r}: shot counts must be non-negative")
    ks = sorted(set(ks))  # the report and the curve go by k, once each
    check_output(out, inputs=[("--data", data), ("--run", run)])
    if plot is not None:
        if Path(plot).suffix.lower() != ".png":
            raise ValueError(f"--plot {plot}: expected a .png file (the plot is drawn as PNG)")
        check_output(plot, flag="--plot", inputs=[("--data", data), ("--run", run), ("--out", out)])
    model = _load_run(run)
    rows = _read_rows(data, "test", model)
    _warn_about_users(rows, model)
    _warn_if_no_posterior(model, active)
    _require_scored_rows([r for r in rows.column("role") if r != "context"], rows.source or data)
    if not unseen_rows(rows)[1]:  # no query rows: --shots scores nothing, and a curve would have no point
        if plot is not None:
            raise ValueError(f"--plot {plot}: {rows.source or data} has no unseen users (rows with role query), so "
                             "there is no few-shot curve to draw; leave out --plot")
        log.warning("%s: no unseen users' query rows (role query), so --shots %s scores nothing; the report holds "
                    "seen users only", rows.source or data, shots)
    report = run_protocol(model, rows, shots=ks, active=active, progress=True)  # warns of users short of a k, by name
    if plot is not None:  # drawn first: a plot that fails leaves no report behind
        from pluralign.eval.plots import plot_few_shot

        plot_few_shot({Path(data).name if Path(data).is_dir() else Path(data).stem: {model.name: report}}, plot)
    with _removed_on_failure(plot):
        write_json(out, report)
    print("\n".join(summary_lines(report)))
    print(f"wrote {out}" + (f" and {plot}" if plot is not None else ""))


def compare(runs: Sequence[str], data: str, out: str, shots: int = 8, active: bool = False) -> None:
    """Two runs on the same rows of DATA: each one's accuracy and their difference with a 95% interval over
    the users (paired, so it needs no oracle: the interval real data gets). With --active, each run asks its
    own questions of the unseen users' context pairs."""
    from pluralign.eval.compare import compare as paired
    from pluralign.eval.metrics import half_width
    from pluralign.io import check_output, write_json

    if len(runs) != 2:
        raise ValueError(f"--runs: give two runs to compare, got {len(runs)}")
    if Path(runs[0]).resolve() == Path(runs[1]).resolve():
        raise ValueError(f"--runs names {runs[0]} twice: a run against itself differs by nothing")
    if shots < 0:
        raise ValueError(f"--shots {shots}: must be non-negative")
    check_output(out, inputs=[("--data", data), ("--runs", runs[0]), ("--runs", runs[1])])
    model_a, model_b = _load_run(runs[0]), _load_run(runs[1])
    rows = _read_rows(data, "test", model_a, model_b)
    _warn_about_users(rows, model_a, model_b)
    for model in (model_a, model_b):
        _warn_if_no_posterior(model, active)
    _require_scored_rows([r for r in rows.column("role") if r != "context"], rows.source or data)
    report = {"run_a": runs[0], "run_b": runs[1], **paired(model_a, model_b, rows, shots, active, progress=True)}
    write_json(out, report)
    for name, label in (("seen", "seen users"), ("unseen", f"unseen users at k = {shots}")):
        if name in report:
            r = report[name]
            interval = f" ± {100 * half:.1f}" if (half := half_width(r, "difference_se")) is not None else ""
            # rows without a user_id are no user: named apart, never counted as users
            anonymous = r.get("rows_without_user", 0)
            if not r["users"]:
                label, who = "rows without a user (population)", ""
            else:
                who = f"{counted(r['users'], 'user')}, " + (
                    f"{counted(anonymous, 'row')} without a user, " if anonymous else "")
            print(f"{label} ({who}{counted(r['n'], 'pair')}): {model_a.name} {r['accuracy_a']:.3f}, "
                  f"{model_b.name} {r['accuracy_b']:.3f}, difference {100 * r['difference']:+.1f}{interval} points"
                  + (" (95%)" if interval else ""))
    print(f"wrote {out}")


def users(run: str, data: str, out: str, shots: int = 8) -> None:
    """Map the user vectors by group: seen users' learned vectors, unseen users' inferred from SHOTS context
    pairs; writes OUT (PNG) and the vectors beside it (OUT with .json)."""
    from pluralign.eval.protocol import warn_short_contexts
    from pluralign.eval.user_map import plot_user_map, type_recovery, user_vectors
    from pluralign.io import check_output, write_json

    if shots < 0:
        raise ValueError(f"--shots {shots}: must be non-negative")
    if Path(out).suffix.lower() != ".png":  # the vectors go to OUT with .json: any other OUT would be overwritten
        raise ValueError(f"--out {out}: expected a .png file (the vectors are written beside it, as .json)")
    check_output(out, inputs=[("--data", data), ("--run", run)])
    check_output(Path(out).with_suffix(".json"), inputs=[("--data", data), ("--run", run)])
    model = _load_run(run)
    rows = _read_rows(data, "test", model)
    warn_short_contexts(rows, [shots])
    records = user_vectors(model, rows, shots)
    if not records:
        raise ValueError(f"{rows.source}: no users to draw: no user ids {run} knows, and no unseen users (rows with "
                         "role context/query)")
    recovery = type_recovery(records)  # none at k = 0, where every unseen user is the population vector
    title = f"{model.name}: unseen users from {shots} context pairs"
    if recovery is not None:
        title += f"\n{recovery:.0%} of them nearest their own group's seen users"
    plot_user_map(records, out, title)
    vectors = Path(out).with_suffix(".json")
    with _removed_on_failure(out):  # the map and its vectors: both or neither
        write_json(vectors, {"method": model.name, "shots": shots, "type_recovery": recovery, "users": records})
    print(f"wrote {out} and {vectors} ({counted(len(records), 'user')}" +
          (f"; type recovery {recovery:.0%})" if recovery is not None else ")"))


def adapt(run: str, pairs: str | None, out: str, active: str | None = None, queries: int | None = None) -> None:
    """Infer a new user's vector from their labelled pairs; with --active, also choose the pairs of a pool of
    unlabelled candidates whose answers would tell most about the user (without --pairs: a user who has answered
    nothing yet, asked their first questions)."""
    from pluralign.io import check_output, write_json

    if pairs is None and not active:
        raise ValueError("--pairs: give the new user's labelled pairs (or --active POOL alone, to choose the first "
                         "questions of a user who has answered none)")
    check_output(out, inputs=[("--run", run), ("--pairs", pairs), ("--active", active)])
    if queries is not None and not active:
        raise ValueError("--queries picks pairs from an --active POOL; give --active POOL too")
    queries = 4 if queries is None else queries
    if active and queries < 1:
        raise ValueError(f"--queries must be at least 1, got {queries}")
    model = _load_run(run)
    _require_user_vector(model, run, "there is no user to infer from --pairs")
    if active and not model.has_active_queries:
        raise ValueError(f"--active: method {model.name!r} has no posterior over users to choose questions by "
                         "(every method but bt has one)")
    labelled = None if pairs is None else _read_rows(pairs, "train", model)
    vector = model.infer_user(labelled)  # no pairs: the population, the prior the first questions are asked by
    result = vector.to_dict()
    if active:
        pool = _read_rows(active, "train", model)
        if queries > len(pool):
            log.warning("--queries %d: %s holds %d pair(s); all of them are chosen", queries, active, len(pool))
        result["next_queries"] = [int(i) for i in model.select_queries(pool, queries, context=labelled)]
        from pluralign.data.split import pair_key

        given = {pair_key(row) for row in labelled.rows} if labelled is not None else set()
        if repeated := [i for i in result["next_queries"] if pair_key(pool.rows[i]) in given]:
            # answered pairs come last: only a pool short of unanswered ones puts them among the rows to ask
            fresh = sum(pair_key(row) not in given for row in pool.rows)
            if not fresh:
                log.warning("--active: every pair of %s is answered in %s already, and asking again tells nothing "
                            "new", active, pairs)
            else:
                log.warning("--active: %s holds %s not answered in %s; the rows to ask after %s (%s) are answered "
                            "already, and asking again tells nothing new", active, counted(fresh, "pair"), pairs,
                            "it" if fresh == 1 else "them", ", ".join(map(str, repeated)))
    write_json(out, result)
    print(f"wrote {out} (user from {counted(vector.n_pairs, 'pair')})")
    if active:
        print(f"ask next, the most informative together, best first: rows "
              f"{', '.join(map(str, result['next_queries']))} of {active} (0-based; next_queries in the JSON)")


def rank(run: str, candidates: str, out: str, user: str | None = None, pairs: str | None = None,
         egalitarian: bool = False) -> None:
    """Best-of-N for a user: score each prompt's candidate responses with the run's reward for the user (a
    known id, a record's user_id, or a new user inferred from --pairs) and keep the best. Writes JSONL:
    prompt, best (its index), response, rewards."""
    from pluralign.data.contract import read_id
    from pluralign.data.readers import read_candidates
    from pluralign.io import check_output, write_jsonl
    from pluralign.methods.reward_function import reward_function

    check_output(out, inputs=[("--run", run), ("--candidates", candidates), ("--pairs", pairs)], suffix=".jsonl")
    if user is not None and pairs is not None:
        raise ValueError("--user and --pairs: give one (a known user's id, or a new user's labelled pairs)")
    if egalitarian and (user is not None or pairs is not None):
        raise ValueError("--egalitarian ranks for every group at once: it takes no --user or --pairs")
    model = _load_run(run)
    if pairs is not None:
        _require_user_vector(model, run, "--pairs would change nothing (rank without --pairs)")
    if user is not None:
        _require_user_vector(model, run, "--user would change nothing (rank without --user)")
        if not model.uses_user_ids:  # micro: trained on pooled pairs, every id would get the population
            raise ValueError(f"--user {user}: {model.name} keeps no users ({run} was trained on pooled pairs), so "
                             "any id would be ranked with the population; give --pairs FILE of the user's labelled "
                             "pairs to adapt to them, or leave --user out")
    if model.uses_embeddings_:
        raise ValueError(f"{run}: the run was fitted on embedding features of width {model.dims_[1]}; rank scores "
                         "text candidates")
    by_record = user is None and pairs is None and not egalitarian and model.uses_user_ids  # each record's user_id
    records = read_candidates(candidates, set(model.user_ids_) if by_record else None)
    if user is not None:  # as the rows' and candidates' ids are read: "1.0" is user 1
        user = read_id(user, "user_id", lambda message: ValueError(f"--user {user!r}: {message}")) or user
    vector = model.infer_user(_read_rows(pairs, "train", model)) if pairs is not None else None
    score = reward_function(model, user=vector if vector is not None else user, egalitarian=egalitarian)
    columns = {}
    named = sum("user_id" in r for r in records)
    if by_record and named:
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
        who = f"a new user from {counted(vector.n_pairs, 'pair')}"
    else:
        who = f"user {user}" if user is not None else "each record's user_id" if columns else "the population"
    if named and not columns:
        # --user, --pairs, --egalitarian, or a method without users (bt, micro): the records' ids change nothing
        log.warning("%s: %s %s a user_id; ranked for %s instead", candidates, counted(named, "record"),
                    "names" if named == 1 else "name", who)
    print(f"wrote {out} ({counted(len(records), 'prompt')}, {counted(len(rewards), 'response')} ranked for {who})")
