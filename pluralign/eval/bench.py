"""``pluralign bench``: every method on every benchmark, one Markdown + JSON table and few-shot curves."""

from __future__ import annotations

import json
import logging
import multiprocessing
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from pluralign.config import build_model, preset
from pluralign.data.contract import PreferenceSet
from pluralign.data.readers import read_preferences
from pluralign.data.synthetic import BENCHMARKS, build_benchmark
from pluralign.eval.ceiling import CEILING, bayes_few_shot
from pluralign.eval.compare import gain_table, paired_table, unseen_hits
from pluralign.eval.metrics import half_width, standard_error_of_mean
from pluralign.eval.plots import plot_few_shot, plot_gaps
from pluralign.eval.protocol import diagnostic_lines, evaluate
from pluralign.io import RUN_CONFIG, read_json, write_files, write_json, write_text

log = logging.getLogger("pluralign.bench")

# a cell's per-row hits on unseen users at k = 8, for the paired table: written to hits.json, not results.json
UNSEEN_HITS = "_unseen_hits"
# with --active, the same model's hits after the file's first 8 context pairs, for the paired gain of choosing
GIVEN_HITS = "_given_hits"
HIDDEN = (UNSEEN_HITS, GIVEN_HITS)
HITS_FILE = "hits.json"


def public(results: dict[str, dict[str, dict]]) -> dict[str, dict[str, dict]]:
    """``results`` without the per-row hits, as results.json holds them."""
    return {name: {m: {k: v for k, v in r.items() if k not in HIDDEN} for m, r in by_method.items()}
            for name, by_method in results.items()}


def write_results(out_dir: str | Path, results: dict[str, dict[str, dict]]) -> None:
    """results.json (the figures) and hits.json (each cell's per-row hits: what ``bench --resume`` needs to keep a
    finished cell in the paired tables without its saved model)."""
    hits = {name: {m: {k: r[k] for k in HIDDEN if r.get(k)} for m, r in by_method.items() if any(map(r.get, HIDDEN))}
            for name, by_method in results.items()}
    write_files({Path(out_dir) / "results.json": json.dumps(public(results), indent=2) + "\n",  # both or neither
                 Path(out_dir) / HITS_FILE: json.dumps(hits) + "\n"})


def _cell(metrics: dict | None, with_oracle: bool = True) -> str:
    if not metrics or "accuracy" not in metrics:
        return "–"
    text = f"{metrics['accuracy']:.3f}"
    if "accuracy_sd" in metrics:  # a mean over seeds
        text += f" ± {metrics['accuracy_sd']:.3f}"
    if with_oracle and metrics.get("oracle_accuracy") is not None:
        text += f" ({metrics['oracle_accuracy']:.3f})"
    return text


def table(results: dict[str, dict[str, dict]], shots: Sequence[int] = (0, 8)) -> str:
    """Markdown: accuracy with the oracle's in parentheses, on the same rows."""
    head = ["benchmark", "method", "seen", "controversial", *[f"unseen k={k}" for k in shots],
            "unseen contr. k=8", "worst group", "fit s", "pairs/s", "peak MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for bench, by_method in results.items():
        for method, r in by_method.items():
            unseen = r.get("unseen", {})
            worst = r.get("worst_group")
            label = f"{method} ({r['overrides']})" if r.get("overrides") else method
            cells = [bench, label, _cell(r.get("seen")), _cell(r.get("controversial")),
                     *[_cell(unseen.get(str(k))) for k in shots],
                     _cell(unseen.get("8", {}).get("controversial")),
                     f"{worst['group']}: {_cell(worst)}" if worst else "–",
                     f"{r['fit'].get('fit_seconds', 0):.1f}" if "fit" in r else "–",
                     f"{r['fit'].get('pairs_per_second', 0):,.0f}" if "fit" in r else "–",
                     _memory(r.get("fit"))]
            lines.append("| " + " | ".join(cells) + " |")
    oracle = any((r.get("seen") or {}).get("oracle_accuracy") is not None for by_method in results.values()
                 for r in by_method.values())
    note = ("\n\nCells: accuracy" + (" (oracle accuracy on the same rows, where the data has an oracle)" if oracle
                                      else "") + ". `peak MB`: the process's peak resident "
            "memory during the fit, embedding included, and in parentheses what the fit added to it; a process "
            "that fitted other cells before may reuse their pages, so a fresh process per method gives each method's "
            "own: `pluralign fit` prints its peak, and `benchmarks/fit_speed.py` in a checkout measures them all.")
    chosen = any(r.get("questions") == "chosen" for by_method in results.values() for r in by_method.values())
    if chosen:
        note += (" Chosen questions (`--active`): each method adapts an unseen user on the k context pairs it asks "
                 "first, one at a time by expected information gain; bt, which has no user, takes them in file order.")
    if any(CEILING in by_method for by_method in results.values()):
        note += (f" `{CEILING}`: the Bayes predictor that knows the generator's rewards and prior over users, "
                 + ("asking its own k questions the same way: the reference of the protocol, not its bound (greedy "
                    "questions are not the best k)." if chosen else
                    "from the same k context pairs: no method can beat it in expectation (pluralign.eval.ceiling)."))
    return "\n".join(lines) + note + "\n" + gap_table(results)


def diagnostics(results: dict[str, dict[str, dict]]) -> str:
    """Markdown: what each cell's method reports of its own fit (VPL's latent, MiCRo's heads, MaxMin's EM and the
    groups it found), one item per line; empty where no method reports any."""
    items = [f"- `{name}`, {method}: {line}" for name, by_method in results.items()
             for method, r in by_method.items() for line in diagnostic_lines(r.get("fit") or {})]
    return "\nFit diagnostics, each method's own report of its fit:\n\n" + "\n".join(items) + "\n" if items else ""


def _memory(fit: dict | None) -> str:
    if not fit or fit.get("peak_memory_mb") is None:
        return "–"
    added = fit.get("added_memory_mb")
    return f"{fit['peak_memory_mb']:,.0f}" + (f" (+{added:,.0f})" if added is not None else "")


def _gap(metrics: dict | None) -> str | None:
    if not metrics or metrics.get("gap_to_oracle_se") is None:
        return None
    return f"{100 * metrics['gap_to_oracle']:.1f} ± {100 * half_width(metrics, 'gap_to_oracle_se'):.1f}"


def gap_table(results: dict[str, dict[str, dict]], k: int = 8) -> str:
    """Markdown: each method's gap to the oracle on unseen users at ``k`` shots, in points, with its 95%
    interval over those users (clustered standard errors times Student's t on their ``se_df``); empty when no
    report carries one."""
    benches = [b for b, by_method in results.items()
               if any(_gap(r.get("unseen", {}).get(str(k))) for r in by_method.values())]
    if not benches:
        return ""
    methods = list(dict.fromkeys(m for b in benches for m in results[b]))
    lines = ["| method | " + " | ".join(benches) + " |", "|" + "---|" * (len(benches) + 1)]
    for method in methods:
        cells = []
        for b in benches:
            entry = results[b].get(method, {}).get("unseen", {}).get(str(k))
            every, hard = _gap(entry), _gap((entry or {}).get("controversial"))
            cells.append("–" if every is None else every + (f" (contr. {hard})" if hard else ""))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return (f"\nGap to the oracle on unseen users at k = {k}, in points (on the controversial pairs in "
            "parentheses), ± a 95% interval for what this many unseen users can tell: standard errors clustered "
            "by user, times Student's t on C − 1 degrees of freedom for C users (over S seeds that each draw their "
            "users, C − S; a folder's users are the same under every seed: C − 1).\n\n"
            + "\n".join(lines) + "\n")


def benchmark_data(name: str, seed: int = 0, **sizes) -> tuple[PreferenceSet, PreferenceSet]:
    """A synthetic benchmark's (train, test) rows, built in memory (deterministic by seed)."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r} (known: {', '.join(BENCHMARKS)})")
    bench = build_benchmark(name, seed=seed, **sizes)
    return (PreferenceSet.from_rows(bench.train, f"{name}/train"), PreferenceSet.from_rows(bench.test, f"{name}/test"))


def bench_data(name: str, seed: int = 0, **options) -> tuple[PreferenceSet, PreferenceSet]:
    """A bench column's (train, test) rows: synthetic benchmark ``name`` built under ``seed`` with ``options``,
    or, where ``name`` is no benchmark, the folder of that path read as it stands (``pluralign data split``
    writes one): its rows do not change with the seed, only the models do."""
    if name in BENCHMARKS:
        return benchmark_data(name, seed, **options)
    return read_preferences(name, split="train"), read_preferences(name, split="test")


def benchmark_ceiling(name: str, seed: int = 0, active: bool = False, **options) -> dict | None:
    """The Bayes few-shot ceiling of a synthetic benchmark's unseen users (None where it has no prior, or is a
    folder of real data); ``active``: after the questions it chooses itself."""
    if name not in BENCHMARKS:
        return None
    bench = build_benchmark(name, seed=seed, **options)
    return bayes_few_shot(bench.prior, bench.test, active=active) if bench.prior is not None else None


def run_dir(out_dir: str | Path, name: str, method: str) -> Path:
    """Where ``bench --save-runs`` saves the model of one cell: OUT/runs/BENCHMARK/METHOD (a folder's path
    with its slashes as underscores), ready for ``pluralign compare``."""
    return Path(out_dir) / "runs" / str(name).strip("/").replace("/", "_") / method


def fit_and_evaluate(method: str, train: PreferenceSet, test: PreferenceSet, seed: int = 0,
                     changed: dict | None = None, progress: bool = False, save_to: Path | None = None,
                     active: bool = False) -> dict:
    """One cell of the bench: ``method``'s shipped preset with ``changed`` on top, fitted on ``train`` and
    evaluated on ``test`` (and saved to ``save_to``), with chosen questions where ``active``; the report names
    the overrides, as the table does."""
    changed = changed or {}
    model = build_model(method, preset(method), **{"seed": seed, **changed})
    model.fit(train, progress=progress)
    if save_to is not None:
        model.save_pretrained(save_to)
    query_probs: dict = {}
    # a folder's short contexts are warned of once, before the cells (pluralign bench)
    report = evaluate(model, test, query_probs=query_probs, active=active, warn_short=False)
    report[UNSEEN_HITS] = unseen_hits(model, test, 8, scored=query_probs.get(8))
    if active:
        report[GIVEN_HITS] = unseen_hits(model, test, 8)
    if changed:
        report["overrides"] = ", ".join(f"{k}={v}" for k, v in changed.items())
    return report


def read_cells(path: Path) -> dict[str, dict[str, dict | None]]:
    """A seed's results.json or hits.json: {benchmark: {method: cell}}, else a ValueError naming the file."""
    saved = read_json(path)
    if not (isinstance(saved, dict) and all(isinstance(cells, dict) and all(c is None or isinstance(c, dict)
                                                                             for c in cells.values())
                                            for cells in saved.values())):
        raise ValueError(f"{path}: not a bench's {path.name} (expected {{benchmark: {{method: figures}}}}); bench "
                         "without --resume to start over")
    return saved


def finished_cells(out_dir: str | Path, benchmarks: Sequence[str], seed: int, data_options: dict,
                   save_runs: bool, active: bool = False) -> dict[str, dict[str, dict]]:
    """The cells an interrupted bench wrote to ``out_dir/results.json`` (``bench --resume`` keeps them), with
    their per-row hits from hits.json. A bench of before wrote no hits: where the cell's model was saved, they are
    scored again from it (with ``active``, the file order's too), so the paired tables keep every method; else the
    cell stays out of them."""
    path = Path(out_dir) / "results.json"
    if not path.exists():
        return {}
    saved = read_cells(path)
    kept = {name: {m: r for m, r in by_method.items() if m != CEILING and isinstance(r, dict) and "seen" in r}
            for name, by_method in saved.items() if name in benchmarks}
    hits_path = Path(out_dir) / HITS_FILE
    hits = read_cells(hits_path) if hits_path.exists() else {}
    from pluralign.methods import PreferenceModel

    for name, by_method in kept.items():
        for method, report in by_method.items():
            report.update(hits.get(name, {}).get(method, {}))
        scored = [m for m, r in by_method.items() if r.get(UNSEEN_HITS) and (r.get(GIVEN_HITS) or not active)]
        saved_models = {m: run_dir(out_dir, name, m) for m in by_method if m not in scored}
        saved_models = {m: d for m, d in saved_models.items() if save_runs and (d / RUN_CONFIG).exists()}
        if saved_models:
            _, test = bench_data(name, seed, **data_options)
            for method, directory in saved_models.items():
                model = PreferenceModel.from_pretrained(directory)
                by_method[method][UNSEEN_HITS] = unseen_hits(model, test, active=active)
                if active:
                    by_method[method][GIVEN_HITS] = unseen_hits(model, test)
        if unsaved := [m for m in by_method if m not in saved_models and m not in scored]:
            log.warning("bench: the kept cells of %s, seed %d (%s) have no saved model (--save-runs), so they stay "
                        "out of the paired table", name, seed, ", ".join(unsaved))
    return {name: by_method for name, by_method in kept.items() if by_method}


def write_bench(results: dict[str, dict[str, dict]], out_dir: str | Path, note: str = "") -> None:
    """results.json, hits.json, results.md (the table, the paired comparison, then ``note``), few_shot.png and gaps.png
    into ``out_dir``."""
    out_dir = Path(out_dir)
    write_results(out_dir, results)
    write_text(out_dir / "results.md", table(results) + paired_table({0: results}, UNSEEN_HITS)
               + gain_table({0: results}, UNSEEN_HITS, GIVEN_HITS) + diagnostics(results)
               + (f"\n{note}" if note else ""))
    plot_few_shot(results, out_dir / "few_shot.png")
    plot_gaps(results, out_dir / "gaps.png")


def run_bench(methods: Sequence[str], datasets: dict[str, tuple[PreferenceSet, PreferenceSet]],
              out_dir: str | Path, seed: int = 0, progress: bool = False,
              overrides: dict[str, dict] | None = None, ceilings: dict[str, dict | None] | None = None,
              note: str = "", save_runs: bool = False, done: dict[str, dict[str, dict]] | None = None,
              active: bool = False) -> dict:
    """Fit each method (its shipped preset, with ``overrides[method]`` on top) on each dataset's train rows
    and evaluate on its test rows; ``ceilings[name]`` (:func:`benchmark_ceiling`) joins as the row
    ``bayes-ceiling``. Writes results.json, results.md (``note`` under the table) and few_shot.png into ``out_dir``;
    with ``save_runs``, each model to :func:`run_dir`. The cells in ``done`` (:func:`finished_cells`) are kept,
    not fitted again. ``active``: chosen questions (:func:`~pluralign.eval.protocol.evaluate`)."""
    results: dict[str, dict[str, dict]] = {}
    for name, (train, test) in datasets.items():
        results[name] = {}
        for method in methods:
            if method in (done or {}).get(name, {}):
                results[name][method] = done[name][method]
                log.info("bench: %s on %s kept from the earlier run", method, name)
                continue
            log.info("bench: %s on %s", method, name)
            results[name][method] = fit_and_evaluate(method, train, test, seed, (overrides or {}).get(method), progress,
                                                     run_dir(out_dir, name, method) if save_runs else None, active)
            write_results(out_dir, results)  # partial results survive an interruption
        if (ceilings or {}).get(name) is not None:
            results[name][CEILING] = ceilings[name]
    write_bench(results, out_dir, note)
    return results


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one intra-op thread for the duration (as in a worker cell), the caller's count restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _worker_cell(name: str, seed: int, data_options: dict, method: str, changed: dict,
                 save_to: Path | None = None, active: bool = False) -> dict:
    """A bench cell in a worker process. The worker builds the benchmark itself, so only names, numbers
    and the JSON-ready report cross the process boundary; one intra-op thread, so workers share the cores
    instead of fighting over them."""
    torch.set_num_threads(1)
    train, test = bench_data(name, seed, **data_options)
    return fit_and_evaluate(method, train, test, seed, changed, save_to=save_to, active=active)


def _warm_cache(methods: Sequence[str], benchmarks: Sequence[str], seeds: Sequence[int], data_options: dict,
                overrides: dict[str, dict]) -> None:
    """Embed every benchmark's texts once, before the workers start, so they do not embed them side by side."""
    for seed in seeds:
        for name in benchmarks:
            train, test = bench_data(name, seed, **data_options)
            done = set()
            for method in methods:
                model = build_model(method, preset(method), **{"seed": seed, **overrides.get(method, {})})
                key = (model.backbone, model.pooling, model.max_length, model.cache_dir)
                if key not in done:
                    done.add(key)
                    model.featurize(train)
                    model.featurize(test)


def _quiet_data_warnings() -> None:
    # a worker reads the rows this process has read (and warned of) already: each warning once, not once a worker
    logging.getLogger("pluralign.data").setLevel(logging.ERROR)


def run_cells_parallel(methods: Sequence[str], benchmarks: Sequence[str], seeds: Sequence[int],
                       data_options: dict, overrides: dict[str, dict],
                       jobs: int, out_dirs: dict[int, Path] | None = None, save_runs: bool = False,
                       done: dict[int, dict[str, dict[str, dict]]] | None = None, active: bool = False
                       ) -> dict[int, dict[str, dict[str, dict]]]:
    """Every (seed, benchmark, method) cell in ``jobs`` worker processes: {seed: {benchmark: {method: report}}}
    in the order of the arguments, whatever order the cells finish in. ``data_options`` go to every
    benchmark's builder (``context`` and the like). With ``out_dirs``, each seed's finished cells are written
    to its ``results.json`` as they come, so an interrupted bench keeps them (as the one-process run does),
    and with ``save_runs`` each model to :func:`run_dir` there. The cells in ``done`` are kept, not fitted."""

    def in_order(seed: int, done: dict[tuple, dict]) -> dict[str, dict[str, dict]]:
        return {name: {m: done[(seed, name, m)] for m in methods if (seed, name, m) in done}
                for name in benchmarks if any((seed, name, m) in done for m in methods)}

    reports: dict[tuple, dict] = {(seed, name, method): report for seed, by_name in (done or {}).items()
                                  for name, by_method in by_name.items() for method, report in by_method.items()}
    cells = [(name, seed, data_options, method, overrides.get(method, {}),
              run_dir(out_dirs[seed], name, method) if save_runs and out_dirs else None, active)
             for seed in seeds for name in benchmarks for method in methods if (seed, name, method) not in reports]
    if cells:
        _warm_cache(methods, benchmarks, seeds, data_options, overrides)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_quiet_data_warnings) as pool:
        futures = {pool.submit(_worker_cell, *cell): cell for cell in cells}
        for done, future in enumerate(as_completed(futures), 1):
            name, seed, _, method, *_ = futures[future]
            try:
                reports[(seed, name, method)] = future.result()
            except Exception as error:
                for other in futures:
                    other.cancel()
                raise RuntimeError(f"bench: {method} on {name} (seed {seed}) failed: {error}") from error
            log.info("bench: %s on %s (seed %d) done [%d/%d]", method, name, seed, done, len(cells))
            if out_dirs is not None:
                write_results(out_dirs[seed], in_order(seed, reports))
    return {seed: in_order(seed, reports) for seed in seeds}


def mean_over_seeds(runs: Sequence[Any], shared_users: bool = False) -> Any:
    """Several seeds' reports (same structure) as one: numbers averaged, every ``accuracy`` with its
    standard deviation across seeds beside it (``accuracy_sd``, ddof 1), keys that some seed lacks left out.
    The worst group is the one whose mean accuracy is lowest (not a mean over each seed's own worst).
    A standard error (``gap_to_oracle_se``, ``expected_gap_to_oracle_se``) becomes that of the mean: √(Σ SE²) / n where each seed draws its
    own users (a synthetic benchmark); where the seeds share them (``shared_users``: a folder of data, whose
    rows are the same under every seed) the mean of the SEs, since the seeds' errors then move together, and
    dividing by √n would count the same users n times. Their degrees of freedom (``se_df``) add up over seeds
    that draw their own users (C − S for C users in S seeds, as in a stratified sample) and stay those of one
    seed where the users are shared."""
    first = runs[0]
    if isinstance(first, dict):
        keys = [k for k in first if all(isinstance(r, dict) and k in r for r in runs)]
        merged = {k: mean_over_seeds([r[k] for r in runs], shared_users) for k in keys}
        if "accuracy" in merged and len(runs) > 1 and merged["accuracy"] is not None:
            merged["accuracy_sd"] = float(np.std([r["accuracy"] for r in runs], ddof=1))
        for key in ("gap_to_oracle_se", "expected_gap_to_oracle_se"):
            if merged.get(key) is not None:
                errors = [r[key] for r in runs]
                merged[key] = float(np.mean(errors)) if shared_users else standard_error_of_mean(errors)
        if merged.get("se_df") is not None and not shared_users:
            merged["se_df"] = int(sum(r["se_df"] for r in runs))
        groups = {g: m for g, m in (merged.get("groups") or {}).items() if m.get("accuracy") is not None}
        if "worst_group" in merged and groups:
            worst = min(groups, key=lambda g: groups[g]["accuracy"])
            merged["worst_group"] = {"group": worst, **groups[worst]}
        return merged
    if any(r is None for r in runs):
        return None
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        return float(np.mean(runs))
    if isinstance(first, (str, bool)):
        return Counter(runs).most_common(1)[0][0]
    return first  # lists and the like: the first seed's


def refuse_fixed_seed(overrides: dict[str, dict]) -> None:
    """ValueError where a method's settings fix its seed: each cell's model takes the benchmark's seed."""
    if seeded := sorted(m for m, changed in overrides.items() if "seed" in changed):
        raise ValueError(f"--set seed: each cell's model takes its seed from --seeds (the benchmark's); a fixed "
                         f"one would make every seed's {seeded[0]} the same model")


def run_bench_seeds(methods: Sequence[str], benchmarks: Sequence[str], out_dir: str | Path,
                    seeds: Sequence[int] = (0,), context: str = "random",
                    overrides: dict[str, dict] | None = None, jobs: int = 1,
                    data_options: dict | None = None, save_runs: bool = False, resume: bool = False,
                    active: bool = False) -> dict:
    """``run_bench`` for each seed (the benchmark's and the model's), then the mean ± sd over seeds.

    One seed writes its results into ``out_dir``; several write ``out_dir/seed-N/`` each and, in
    ``out_dir``, results.md (mean ± sd), results.json (``mean`` and every seed's ``runs``) and the
    plot of the mean curves. Every cell fits on one thread: ``jobs`` > 1 fits the cells in that many worker
    processes of one thread each (:func:`run_cells_parallel`), ``jobs`` = 1 in this process on one thread (the
    cache warmed first on all of them, as for the workers). ``data_options`` are further keywords of the
    benchmarks' builders (``pluralign bench --data-set``). ``save_runs`` saves every model under its seed's
    folder (:func:`run_dir`). ``resume`` keeps the cells each seed's results.json already holds
    (:func:`finished_cells`) and fits only the rest. ``active``: chosen questions, for the methods and the Bayes
    ceiling alike. A method's ``seed`` in ``overrides`` is refused: each cell takes the benchmark's."""
    out_dir = Path(out_dir)
    overrides = overrides or {}
    refuse_fixed_seed(overrides)
    options = {"context": context, **(data_options or {})}
    seed_dirs = {seeds[0]: out_dir} if len(seeds) == 1 else {seed: out_dir / f"seed-{seed}" for seed in seeds}
    if stale := sorted(d.name for d in out_dir.glob("seed-*") if d.is_dir() and d not in seed_dirs.values()):
        log.warning("bench: %s in %s %s from an earlier bench (not among these seeds), left as it was",
                    ", ".join(stale), out_dir, "is" if len(stale) == 1 else "are")
    done = ({seed: finished_cells(seed_dirs[seed], benchmarks, seed, options, save_runs, active) for seed in seeds}
            if resume else {})
    for seed, kept in done.items():
        n_kept = sum(len(by_method) for by_method in kept.values())
        log.info("bench: seed %d: %d cell(s) kept from %s", seed, n_kept, seed_dirs[seed] / "results.json")
    parallel = (run_cells_parallel(methods, benchmarks, seeds, options, overrides, jobs, seed_dirs, save_runs, done,
                                   active) if jobs > 1 else None)
    if parallel is None and any(m not in done.get(seed, {}).get(name, {})
                                for seed in seeds for name in benchmarks for m in methods):
        _warm_cache(methods, benchmarks, seeds, options, overrides)  # embedded on every thread, as for the workers

    folders = [name for name in benchmarks if name not in BENCHMARKS and Path(name).is_dir()]  # read as they stand
    built = ("Benchmarks built with " + ", ".join(f"{k}={v}" for k, v in data_options.items())
             + (f" (not the folders {', '.join(folders)}: read as they stand)" if folders else "") + ".\n"
             if data_options and len(folders) < len(benchmarks) else "")
    if context != "random" and len(folders) < len(benchmarks):  # the table is of another protocol: said under it
        built += ("Unseen users' context pairs: controversial pairs only (--context survey, VPL's protocol)"
                  + (f"; not the folders' ({', '.join(folders)})" if folders else "") + ".\n")

    def run(seed: int, out: Path) -> dict:
        ceilings = {name: benchmark_ceiling(name, seed, active, **options) for name in benchmarks}
        if parallel is None:
            datasets = {name: bench_data(name, seed, **options) for name in benchmarks}
            with one_thread():  # --jobs 1 fits on one thread too: the workers' figures, and the help's promise
                return run_bench(methods, datasets, out, seed=seed, overrides=overrides, ceilings=ceilings,
                                 note=built, save_runs=save_runs, done=done.get(seed), active=active)
        results = parallel[seed]
        for name, ceiling in ceilings.items():
            if ceiling is not None:
                results[name][CEILING] = ceiling
        write_bench(results, out, built)
        return results

    if len(seeds) == 1:
        return run(seeds[0], out_dir)
    runs = {seed: run(seed, seed_dirs[seed]) for seed in seeds}
    folders = [name for name in benchmarks if name not in BENCHMARKS]  # their users are the same under every seed
    mean = public({name: {m: mean_over_seeds([runs[s][name][m] for s in seeds], shared_users=name in folders)
                          for m in runs[seeds[0]][name]} for name in benchmarks})
    described = {"seeds": list(seeds), "context": context, **({"data_options": data_options} if data_options else {}),
                 **({"questions": "chosen"} if active else {})}
    write_json(out_dir / "results.json", {**described, "mean": mean, "runs": {str(s): public(r) for s, r in runs.items()}})
    seeded = "benchmark and model seed alike" + ("; a folder's rows are the same under every seed" if folders else "")
    where = "; each seed's fit diagnostics are in its seed-N/results.md" if any(map(diagnostics, runs.values())) else ""
    note = f"Mean ± standard deviation over seeds {', '.join(map(str, seeds))} ({seeded}){where}.\n" + built
    write_text(out_dir / "results.md", table(mean) + paired_table(runs, UNSEEN_HITS, folders)
               + gain_table(runs, UNSEEN_HITS, GIVEN_HITS, folders) + "\n" + note)
    plot_few_shot(mean, out_dir / "few_shot.png")
    plot_gaps(mean, out_dir / "gaps.png")
    return mean
