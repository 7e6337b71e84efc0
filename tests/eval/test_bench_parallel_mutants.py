"""Mutation audit of the bench's worker path (pluralign.eval.bench.run_cells_parallel and run_bench_seeds with
jobs > 1): which cells go to the workers and with what, how their reports merge back (under their own seed,
benchmark and method, in the order asked for, whatever order they finish in), what an interrupted bench keeps
and resumes, and that jobs=2 gives what jobs=1 gives. The process pool runs in-process here and a cell's fit is
a stand-in whose report names the cell, so no model is fitted and every expectation is written out by hand."""

from __future__ import annotations

import json
from concurrent.futures import Future
from pathlib import Path

import pytest
import torch

from pluralign.eval import bench


class InlinePool:
    """Stands in for ProcessPoolExecutor: each cell runs at submit; the futures remember being cancelled."""

    made: list["InlinePool"] = []

    def __init__(self, max_workers: int, mp_context=None, initializer=None) -> None:
        # the initializer is a worker's (it quiets the data log): kept, not run in this process
        self.max_workers, self.futures, self.initializer = max_workers, [], initializer
        InlinePool.made.append(self)

    def __enter__(self) -> "InlinePool":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def submit(self, function, *args) -> Future:
        future = Future()
        future.cancelled_by_bench = False
        future.cancel = lambda: setattr(future, "cancelled_by_bench", True) or False
        try:
            future.set_result(function(*args))
        except Exception as error:  # noqa: BLE001 - handed on as a worker's failure is
            future.set_exception(error)
        self.futures.append(future)
        return future


@pytest.fixture
def stand_ins(monkeypatch):
    """The pool in-process, the cells finishing in the reverse of their submission, the cache warm-up a no-op,
    benchmark data as a label, and a fit whose report names its cell: (benchmark, seed, method, overrides,
    save_to, active). Returns the list of fitted cells, in the order fitted."""
    fitted: list[tuple] = []
    threads = torch.get_num_threads()

    def fit(method, train, test, seed=0, changed=None, progress=False, save_to=None, active=False) -> dict:
        name = train[1]
        assert test == ("test", name, seed)
        fitted.append((name, seed, method))
        accuracy = 0.5 + 0.1 * seed + 0.01 * len(method)
        return {"seen": {"n": 10, "accuracy": accuracy}, "unseen": {"8": {"accuracy": accuracy - 0.1}},
                "cell": [name, seed, method, changed or {}, None if save_to is None else str(save_to), active],
                bench.UNSEEN_HITS: {"user": ["u1", "u2"], "hit": [1, len(method) % 2]}}

    InlinePool.made = []
    monkeypatch.setattr(bench, "ProcessPoolExecutor", InlinePool)
    monkeypatch.setattr(bench, "as_completed", lambda futures: list(reversed(list(futures))))
    monkeypatch.setattr(bench, "_warm_cache", lambda *args: None)
    monkeypatch.setattr(bench, "bench_data", lambda name, seed=0, **options: (("train", name, seed, options),
                                                                              ("test", name, seed)))
    monkeypatch.setattr(bench, "fit_and_evaluate", fit)
    yield fitted
    torch.set_num_threads(threads)  # a worker cell sets one thread


def test_cells_merge_under_their_own_keys_in_the_order_asked_for(stand_ins, tmp_path):
    """Seeds [1, 0], benchmarks [y, x], methods [m2, m1], finishing in reverse: the result is ordered seed 1, 0;
    y, x; m2, m1 (not sorted, not as finished), each report under its own (seed, benchmark, method), built with
    that method's overrides, the data options, the seed's own run folder and --active; jobs workers; each seed's
    results.json holds that seed's cells only. Mutants: sorted benchmarks or methods, overrides looked up by
    benchmark, every cell saved under the first seed's folder, max_workers=1, the seed and benchmark swapped."""
    dirs = {1: tmp_path / "seed-1", 0: tmp_path / "seed-0"}
    merged = bench.run_cells_parallel(["m2", "m1"], ["y", "x"], [1, 0], {"n_users": 6}, {"m1": {"epochs": 2}}, jobs=3,
                                      out_dirs=dirs, save_runs=True, active=True)
    assert [pool.max_workers for pool in InlinePool.made] == [3]
    assert list(merged) == [1, 0]
    for seed in (1, 0):
        assert list(merged[seed]) == ["y", "x"] and all(list(merged[seed][b]) == ["m2", "m1"] for b in "yx")
        for name in "yx":
            for method, changed in (("m2", {}), ("m1", {"epochs": 2})):
                saved = str(dirs[seed] / "runs" / name / method)
                assert merged[seed][name][method]["cell"] == [name, seed, method, changed, saved, True]
        written = json.loads((dirs[seed] / "results.json").read_text())
        assert written == bench.public(merged[seed]) and list(written) == ["y", "x"]
    assert stand_ins[0] == ("y", 1, "m2")  # submitted in the order asked for
    assert len(stand_ins) == 8


def test_a_failed_cell_cancels_the_rest_and_leaves_the_finished_ones_written(stand_ins, tmp_path, monkeypatch):
    """Cells (seed 0: x.a, x.b, y.a, y.b; seed 1: the same) finish in reverse; seed 0's x.b fails, after seed 1's
    four cells and seed 0's y.b, y.a. The error names the cell; every future is cancelled; seed 1's results.json
    holds its 4 cells, seed 0's only y's (no empty x). Mutants: no cancel; the partial results written to the
    first seed's folder; benchmarks with no finished cell kept as {}; the seed and benchmark swapped."""
    fit = bench.fit_and_evaluate

    def failing(method, train, test, seed=0, *rest, **keywords):
        if (train[1], seed, method) == ("x", 0, "b"):
            raise ValueError("boom")
        return fit(method, train, test, seed, *rest, **keywords)

    monkeypatch.setattr(bench, "fit_and_evaluate", failing)
    dirs = {0: tmp_path / "seed-0", 1: tmp_path / "seed-1"}
    with pytest.raises(RuntimeError, match=r"^bench: b on x \(seed 0\) failed: boom$"):
        bench.run_cells_parallel(["a", "b"], ["x", "y"], [0, 1], {}, {}, jobs=2, out_dirs=dirs)
    assert all(f.cancelled_by_bench for pool in InlinePool.made for f in pool.futures)
    one = json.loads((dirs[1] / "results.json").read_text())
    zero = json.loads((dirs[0] / "results.json").read_text())
    assert {b: list(ms) for b, ms in one.items()} == {"x": ["a", "b"], "y": ["a", "b"]}
    assert {b: list(ms) for b, ms in zero.items()} == {"y": ["a", "b"]}
    assert zero["y"]["a"]["cell"][:3] == ["y", 0, "a"] and one["x"]["a"]["cell"][:3] == ["x", 1, "a"]


def test_kept_cells_are_not_fitted_again(stand_ins):
    """done holds seed 0's x.m1: it is returned as it was (the same object) and only the other 3 cells are fitted.
    Mutant: every cell fitted, kept or not."""
    kept = {"seen": {"n": 10, "accuracy": 0.9}}
    merged = bench.run_cells_parallel(["m1", "m2"], ["x"], [0, 1], {}, {}, jobs=2, done={0: {"x": {"m1": kept}}})
    assert merged[0]["x"]["m1"] is kept
    assert sorted(stand_ins) == [("x", 0, "m2"), ("x", 1, "m1"), ("x", 1, "m2")]


def _bench(tmp_path: Path, jobs: int, **options) -> tuple[dict, dict]:
    """run_bench_seeds of m2, m1 on folders y and x (no ceiling), with write_bench and the mean's plots caught:
    (what it returned, {seed folder: (its results as results.json holds them, the note, the results in memory)})."""
    written = {}

    def write_bench(results, out_dir, note=""):
        written[Path(out_dir).name] = (json.loads(json.dumps(bench.public(results))), note)
        results_of[Path(out_dir).name] = results

    results_of: dict = {}
    patch = pytest.MonkeyPatch()
    patch.setattr(bench, "write_bench", write_bench)
    patch.setattr(bench, "plot_few_shot", lambda *args: None)
    patch.setattr(bench, "plot_gaps", lambda *args: None)
    try:
        returned = bench.run_bench_seeds(["m2", "m1"], ["y", "x"], tmp_path, jobs=jobs, **options)
    finally:
        patch.undo()
    return returned, {name: (*written[name], results_of[name]) for name in written}


def test_jobs_2_gives_what_jobs_1_gives(stand_ins, tmp_path):
    """Two seeds, builder options, overrides, saved runs: the same cells (overrides, folders, seeds), the same
    per-seed results and notes (no ceiling row for a folder: its ceiling is None), the same mean and files.
    Mutants: the parallel path taken only above 2 jobs; a None ceiling added as a row; the note dropped; every
    seed given the first seed's results."""
    options = dict(seeds=[1, 0], overrides={"m1": {"epochs": 2}}, data_options={"n_users": 6}, save_runs=True)
    out = tmp_path / "bench"
    one, one_written = _bench(out, 1, **options)
    files = {name: (out / name).read_text() for name in ("results.json", "results.md")}
    serial = sorted(stand_ins)
    stand_ins.clear()
    two, two_written = _bench(out, 2, **options)
    assert len(InlinePool.made) == 1 and sorted(stand_ins) == serial and len(serial) == 8
    note = "Benchmarks built with n_users=6.\n"
    for seed in ("seed-1", "seed-0"):
        results, written_note, _ = two_written[seed]
        assert written_note == note == one_written[seed][1]
        assert results == one_written[seed][0]
        assert list(results) == ["y", "x"] and all(list(results[b]) == ["m2", "m1"] for b in "yx")
        assert results["x"]["m1"]["cell"] == ["x", int(seed[-1]), "m1", {"epochs": 2},
                                              str(out / seed / "runs" / "x" / "m1"), False]
    assert json.loads(json.dumps(two)) == json.loads(json.dumps(one))
    assert {name: (out / name).read_text() for name in files} == files


def test_resume_keeps_each_seeds_own_cells_in_both_paths(stand_ins, tmp_path, monkeypatch):
    """Seeds 1 and 0, an earlier bench's cells in seed-1/results.json (y.m1) and seed-0/results.json (x.m2, and a
    ceiling row that is no cell), each with its saved model: only the other 6 cells are fitted, the kept ones come
    back as they were with their hits scored again on their own seed's test rows. Mutants: the kept cells read
    from OUT instead of each seed's folder; the parallel path given no kept cells; the hits scored on seed 0's
    rows; kept cells fitted again."""
    import pluralign.methods

    kept = {"seed-1": ("y", "m1"), "seed-0": ("x", "m2")}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        for seed, (name, method) in kept.items():
            report = {"seen": {"n": 10, "accuracy": 0.25}, "kept": seed}
            (out / seed / "runs" / name / method).mkdir(parents=True)
            (out / seed / "runs" / name / method / "config.json").write_text("{}")
            (out / seed / "results.json").write_text(json.dumps({name: {method: report,
                                                                        "bayes-ceiling": {"unseen": {}}}}))
        monkeypatch.setattr(pluralign.methods.PreferenceModel, "from_pretrained", staticmethod(lambda d: str(d)))
        monkeypatch.setattr(bench, "unseen_hits", lambda model, test, shots=8, active=False: {
            "user": ["u1", "u2"], "hit": [1, 1], "of": [model, test]})
        stand_ins.clear()
        _, written = _bench(out, jobs, seeds=[1, 0], save_runs=True, resume=True)
        assert len(stand_ins) == 6 and not {("y", 1, "m1"), ("x", 0, "m2")} & set(stand_ins)
        for seed, (name, method) in kept.items():
            cell = written[seed][2][name][method]
            runs = str(out / seed / "runs" / name / method)
            assert cell["kept"] == seed and cell[bench.UNSEEN_HITS]["of"] == [runs, ("test", name, int(seed[-1]))]


def test_jobs_1_fits_on_one_thread_and_gives_the_count_back(stand_ins, tmp_path, monkeypatch):
    """--jobs 1 fitted on every torch thread, though its help says one thread each (as the workers of jobs > 1):
    the cells fit on one, the cache is warmed before on all of them, and the caller's count comes back."""
    threads, warmed = [], []
    fit = bench.fit_and_evaluate
    monkeypatch.setattr(bench, "fit_and_evaluate", lambda *args, **kw: threads.append(torch.get_num_threads())
                        or fit(*args, **kw))
    monkeypatch.setattr(bench, "_warm_cache", lambda *args: warmed.append(torch.get_num_threads()))
    torch.set_num_threads(2)
    _bench(tmp_path, 1, seeds=[0, 1])
    assert threads == [1] * 8 and warmed == [2] and torch.get_num_threads() == 2
    threads.clear(), warmed.clear()
    done = {seed: {b: {"m2": {"seen": {"accuracy": 0.5}}, "m1": {"seen": {"accuracy": 0.5}}} for b in "yx"}
            for seed in (0, 1)}
    monkeypatch.setattr(bench, "finished_cells", lambda out, benchmarks, seed, *args: done[seed])
    _bench(tmp_path, 1, seeds=[0, 1], resume=True)  # every cell kept: nothing to embed
    assert threads == [] and warmed == []
