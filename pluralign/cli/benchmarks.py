"""``pluralign bench`` and ``pluralign demo``: every method on every benchmark, and the main job on the shipped data."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Sequence

log = logging.getLogger("pluralign")
DEFAULT_DEMO_DATA = "pets"
BENCH_OUTPUTS = ("results.json", "hits.json", "results.md", "few_shot.png", "gaps.png")  # and runs/, run.json


def bench(methods: Sequence[str] | None, benchmarks: Sequence[str] | None, out: str,
          seeds: Sequence[int] = (0,), context: str = "random", overrides: Sequence[str] = (), jobs: int = 1,
          data_options: Sequence[str] = (), save_runs: bool = False, resume: bool = False, active: bool = False
          ) -> None:
    """Every method on every benchmark (a synthetic one, or a folder of train and test files such as `data split`
    writes), and the Bayes few-shot ceiling where there is one: results.md, results.json, few_shot.png, gaps.png (where
    the data has an oracle), and run.json."""
    from pluralign.config import build_model, parse_method_overrides, parse_overrides, preset
    from pluralign.data.synthetic import BENCHMARKS, check_options
    from pluralign.eval.bench import bench_data, one_thread, read_cells, refuse_fixed_seed, run_bench_seeds
    from pluralign.eval.protocol import DEFAULT_SHOTS, warn_short_contexts
    from pluralign.io import check_output, read_json
    from pluralign.provenance import resumable_record, write_run_record

    methods = known_methods(methods)
    places = [_same_benchmark(b) for b in benchmarks or ()]
    if named_twice := [b for i, b in enumerate(benchmarks or ()) if places[i] in places[:i]]:
        # it fitted the same cells twice, and wrote two identical columns
        raise ValueError(f"--benchmarks names {', '.join(named_twice)} more than once")
    built = parse_overrides(data_options, "--data-set")
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
    if built:  # their values too (n_users=abc), which only the builders check: build each benchmark once now
        check_data_options([n for n in benchmarks or BENCHMARKS if n not in folders], seeds[0], context, built,
                           data_options)
    check_output(out, folder=True, inputs=[("--benchmarks", folder) for folder in folders])
    per_method = parse_method_overrides(overrides, methods)
    refuse_fixed_seed(per_method)
    contents = {}  # each folder's rows, by their sha256: a --resume keeps a folder's cells only on the same rows
    for folder in folders:  # a folder without its train and test files, or without the users a method needs,
        train, test = bench_data(folder)  # stops here, before run.json is written
        warn_short_contexts(test, DEFAULT_SHOTS)  # a split with --context 4 scores "k = 8" on 4 pairs
        for m in methods:
            build_model(m, {**preset(m), **per_method.get(m, {})}).check_training_users(train)
        contents[folder] = rows_sha256(train.rows, test.rows)
    # each method's settings as its cells are fitted (the preset, then --set): the run is known by them, not by
    # the presets of whatever version reads run.json later, and a --resume compares them
    configs = {m: {**preset(m), **per_method.get(m, {})} for m in methods}
    arguments = dict(methods=methods, benchmarks=list(benchmarks or BENCHMARKS), seeds=list(seeds), context=context,
                     overrides=list(overrides), configs=json.loads(json.dumps(configs, default=str)),
                     data_options=list(data_options), jobs=jobs, save_runs=save_runs,
                     **({"active": True} if active else {}),  # runs recorded before --active existed resume
                     **({"folder_rows": contents} if contents else {}))
    resumes = resumable_record(out, arguments) if resume else None
    if resume:  # the files a resume keeps cells from, read now: a damaged one stops before run.json is rewritten
        for kept in (*Path(out).rglob("results.json"), *Path(out).rglob("hits.json")):
            many = kept == Path(out) / "results.json" and len(seeds) > 1  # the mean over seeds, not cells
            read_json(kept) if many else read_cells(kept)
    else:
        clear_earlier_bench(Path(out), seeds)
    with one_thread():  # run.json's torch_threads: every cell fits on one thread, whatever --jobs
        write_run_record(out, "bench", resumes=resumes, **arguments)
    run_bench_seeds(methods, list(benchmarks or BENCHMARKS), out, seeds=list(seeds), context=context,
                    overrides=per_method, jobs=jobs, data_options=built, save_runs=save_runs, resume=resume,
                    active=active)
    print((Path(out) / "results.md").read_text())


def clear_earlier_bench(out: Path, seeds: Sequence[int]) -> None:
    """An earlier bench's outputs where this run writes are not its own: a later --resume would keep its cells,
    compare would read its saved runs, and a plot this run does not draw (no oracle) would stay; they go (other
    seeds' folders stay: a --resume takes these seeds only). Only a bench's: in a folder whose run.json is not a
    bench's, such files are someone else's (``--out .`` beside a runs/ of fitted models), and the bench stops."""
    from pluralign.io import read_json

    found = [path for folder in (out, *(out / f"seed-{s}" for s in seeds))
             for path in (folder / name for name in (*BENCH_OUTPUTS, "runs")) if path.exists() or path.is_symlink()]
    if not found:
        return
    try:
        ours = read_json(out / "run.json").get("command") == "bench"
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ValueError(f"--out {out}: {found[0]}{more} is not an earlier bench's (no bench's run.json in {out}), "
                         "and a bench would replace it; choose an empty folder")
    for path in found:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _same_benchmark(name: str) -> str:
    """A synthetic benchmark by its name, a folder by where it is (data/x and ./data/x are one)."""
    from pluralign.data.synthetic import BENCHMARKS

    return name if name in BENCHMARKS or not Path(name).is_dir() else str(Path(name).resolve())


def rows_sha256(*row_lists: Sequence[dict]) -> str:
    """sha256 of rows as JSON (keys sorted), list after list."""
    digest = hashlib.sha256()
    for rows in row_lists:
        for row in rows:
            digest.update(json.dumps(row, sort_keys=True, default=str).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def check_data_options(benchmarks: Sequence[str], seed: int, context: str, built: dict,
                       data_options: Sequence[str]) -> None:
    """Build each synthetic benchmark with the --data-set values, so that a bad value stops before OUT/run.json is
    written; the error names the flag and its entries."""
    from pluralign.eval.bench import bench_data

    for name in benchmarks:
        try:
            bench_data(name, seed, context=context, **built)
        except (ValueError, TypeError) as err:  # DataError is a ValueError; a builder's arithmetic may raise either
            named = [o for o in data_options if o.partition("=")[0].strip() in str(err)] or list(data_options)
            raise ValueError(f"--data-set {' '.join(named)}: {err}") from None


def known_methods(methods: Sequence[str] | None) -> list[str]:
    """The methods asked for (all without any), each known and named once: checked before any output exists."""
    from pluralign.methods import METHODS

    methods = list(methods or METHODS)
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r} (known: {', '.join(METHODS)})")
    if repeated := sorted({m for m in methods if methods.count(m) > 1}):
        raise ValueError(f"--methods names {', '.join(repeated)} more than once")
    return methods


def demo(out: str = "demo", methods: Sequence[str] | None = None) -> None:
    """The main job: every method on the shipped default data (data/pets), a table and a plot."""
    from pluralign.data import read_preferences
    from pluralign.data.synthetic import build_benchmark
    from pluralign.eval.bench import benchmark_data, run_bench
    from pluralign.eval.ceiling import bayes_few_shot
    from pluralign.io import check_output
    from pluralign.provenance import write_run_record

    methods = known_methods(methods)
    check_output(out, folder=True)
    shipped = Path(__file__).resolve().parents[2] / "data" / DEFAULT_DEMO_DATA
    if (shipped / "train.jsonl").exists():
        datasets = {DEFAULT_DEMO_DATA: (read_preferences(shipped, "train"), read_preferences(shipped, "test"))}
        source = str(shipped)
    else:  # an installed package without the checkout: build the same data (deterministic)
        datasets = {DEFAULT_DEMO_DATA: benchmark_data(DEFAULT_DEMO_DATA, 0)}
        source = f"built: pluralign data build {DEFAULT_DEMO_DATA} --seed 0 (no data/ beside the package)"
    # the shipped rows are the seed-0 build: its generator's prior gives their Bayes few-shot ceiling
    prior = build_benchmark(DEFAULT_DEMO_DATA, seed=0).prior
    ceiling = bayes_few_shot(prior, datasets[DEFAULT_DEMO_DATA][1].rows)
    write_run_record(out, "demo", methods=methods, data=source)
    run_bench(methods, datasets, out, ceilings={DEFAULT_DEMO_DATA: ceiling})
    print((Path(out) / "results.md").read_text())
    print(f"plots: {out}/few_shot.png and {out}/gaps.png, table: {out}/results.md, all figures: {out}/results.json, "
          f"what made them: {out}/run.json")
