"""The bench's arithmetic and tables by hand: the mean and sample sd over seeds, which keys survive, the columns
of the Markdown table and the gap table, and what the two plots draw (read off the figure, not the pixels)."""

from __future__ import annotations

from typing import Any

import pytest

from pluralign.eval import plots
from pluralign.eval.bench import gap_table, mean_over_seeds, table
from pluralign.eval.ceiling import CEILING


def test_numbers_are_means_labels_the_most_common_and_keys_all_seeds_hold() -> None:
    """Two seeds, 0.6 and 1.0: mean 0.8 (the median of two is the mean too, so three seeds, 0.1, 0.2, 0.9: mean
    0.4, not the median 0.2), sample sd of (0.6, 1.0) = √((0.2² + 0.2²) / 1) = 0.283 (ddof 0: 0.2). A label: the
    most common of (bt, bt, gpm), bt, not the last seed's. A key one seed lacks is left out; a None in any seed
    gives None."""
    merged = mean_over_seeds([{"x": 0.1, "name": "bt", "only": 1.0, "maybe": 0.5},
                              {"x": 0.2, "name": "bt", "maybe": None},
                              {"x": 0.9, "name": "gpm", "maybe": 0.7}])
    assert merged == {"x": pytest.approx(0.4), "name": "bt", "maybe": None}
    two = mean_over_seeds([{"seen": {"accuracy": 0.6}}, {"seen": {"accuracy": 1.0}}])["seen"]
    assert two["accuracy"] == pytest.approx(0.8) and two["accuracy_sd"] == pytest.approx(0.2 * 2 ** 0.5)


def full_report() -> dict[str, Any]:
    """A report whose every accuracy is distinct, so a cell read from the wrong key shows."""
    return {"seen": {"accuracy": 0.801, "oracle_accuracy": 0.901},
            "controversial": {"accuracy": 0.602, "oracle_accuracy": 0.702},
            "unseen": {"0": {"accuracy": 0.503, "oracle_accuracy": 0.803},
                       "8": {"accuracy": 0.704, "oracle_accuracy": 0.804,
                             "controversial": {"accuracy": 0.405, "oracle_accuracy": 0.605}}},
            "worst_group": {"group": "g", "accuracy": 0.306}}


def test_every_column_of_the_table_reads_its_own_key() -> None:
    """The row, cell by cell: benchmark, method, seen (oracle), controversial (oracle), unseen k=0, unseen k=8,
    unseen controversial at k=8, the worst group, and no fit (–, –, –)."""
    row = table({"b": {"bt": full_report()}}).splitlines()[2]
    assert row == ("| b | bt | 0.801 (0.901) | 0.602 (0.702) | 0.503 (0.803) | 0.704 (0.804) | 0.405 (0.605) "
                   "| g: 0.306 | – | – | – |")


def test_the_gap_table_gives_the_controversial_gap_beside_the_gap() -> None:
    """12 users (11 df): gap 0.05 ± t₁₁ 2.201 · 0.01 → 5.0 ± 2.2 points; controversial, 8 of them (7 df),
    0.12 ± 2.365 · 0.02 → 12.0 ± 4.7. A record without df (written before 2026-11-29): 1.96, 5.0 ± 2.0."""
    entry = {"gap_to_oracle": 0.05, "gap_to_oracle_se": 0.01, "se_df": 11,
             "controversial": {"gap_to_oracle": 0.12, "gap_to_oracle_se": 0.02, "se_df": 7}}
    assert "| bt | 5.0 ± 2.2 (contr. 12.0 ± 4.7) |" in gap_table({"b": {"bt": {"unseen": {"8": entry}}}})
    old = {"gap_to_oracle": 0.05, "gap_to_oracle_se": 0.01}
    assert "| bt | 5.0 ± 2.0 |" in gap_table({"b": {"bt": {"unseen": {"8": old}}}})


def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures the plots would save, kept open to read."""
    figures: list[Any] = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, bottom=0.0: figures.append(fig) or path)
    return figures


def test_the_few_shot_curve_runs_in_k_order_and_the_oracle_is_the_k0_one(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path) -> None:
    """ks 0, 2, 16 given in the order "16", "0", "2": the curve's x are 0, 2, 16 (not the strings' order 0, 16, 2),
    its y follows them; the dashed oracle line is at the first k's oracle accuracy, 0.9 (not the last k's 0.7)."""
    figures = drawn(monkeypatch)
    unseen = {"16": {"accuracy": 0.8, "oracle_accuracy": 0.7}, "0": {"accuracy": 0.5, "oracle_accuracy": 0.9},
              "2": {"accuracy": 0.6, "oracle_accuracy": 0.8}}
    plots.plot_few_shot({"b": {"bt": {"unseen": unseen}}}, tmp_path / "f.png")
    lines = {line.get_label(): line for line in figures[0].axes[0].get_lines()}
    assert list(lines["bt"].get_xdata()) == [0, 2, 16] and list(lines["bt"].get_ydata()) == [0.5, 0.6, 0.8]
    assert list(lines["oracle"].get_ydata()) == [0.9, 0.9]


def test_the_gap_plot_draws_t_intervals_and_the_ceiling_last(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """The ceiling given first is drawn in the last row; vpl's gap over 12 users, 0.05 ± t₁₁ 2.201 · 0.01, spans
    2.80 to 7.20 points; a record without df (before 2026-11-29), ± 1.96 · 0.01, 3.04 to 6.96.
    A benchmark where only the ceiling has a gap gets no panel."""
    def gap(points: float, se: float, df: int | None = 11) -> dict[str, Any]:
        return {"unseen": {"8": {"gap_to_oracle": points / 100, "gap_to_oracle_se": se,
                                 **({"se_df": df} if df is not None else {})}}}

    for df, span in ((11, [2.799, 7.201]), (None, [3.04, 6.96])):
        figures = drawn(monkeypatch)
        plots.plot_gaps({"b": {CEILING: gap(1, 0.004), "vpl": gap(5, 0.01, df)}, "c": {CEILING: gap(2, 0.01)}},
                        tmp_path / "g.png")
        visible = [ax for ax in figures[0].axes if ax.axison]
        assert len(visible) == 1
        assert [t.get_text() for t in visible[0].get_yticklabels()] == ["vpl", CEILING]
        spans = [seg for c in visible[0].collections for seg in c.get_segments()]
        vpl = [s for s in spans if s[0][1] == 0][0]
        assert [vpl[0][0], vpl[1][0]] == pytest.approx(span, abs=1e-3)


def test_run_bench_keeps_the_done_cells_and_fits_the_rest(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Methods a, b on one dataset, a done before: only b is fitted (with seed 3 and its overrides), a's report is
    the kept one, the ceiling comes last, and results.json holds every cell as it goes."""
    import json

    from pluralign.eval import bench

    fitted: list[tuple[str, int, dict | None]] = []

    def fake_fit(method: str, train: Any, test: Any, seed: int = 0, changed: dict | None = None, *rest: Any) -> dict:
        fitted.append((method, seed, changed))
        return {"seen": {"accuracy": 0.5}}

    monkeypatch.setattr(bench, "fit_and_evaluate", fake_fit)
    monkeypatch.setattr(bench, "write_bench", lambda results, out_dir, note="": None)
    kept = {"seen": {"accuracy": 0.9}, "fit": {"fit_seconds": 7.0}}
    results = bench.run_bench(["a", "b"], {"d": (None, None)}, tmp_path, seed=3, overrides={"b": {"epochs": 2}},
                              ceilings={"d": {"unseen": {}}}, done={"d": {"a": kept}})
    assert fitted == [("b", 3, {"epochs": 2})]
    assert list(results["d"]) == ["a", "b", CEILING] and results["d"]["a"] is kept
    assert json.loads((tmp_path / "results.json").read_text()) == {"d": {"a": kept, "b": {"seen": {"accuracy": 0.5}}}}


def test_a_cell_builds_its_model_with_the_seed_and_the_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """fit_and_evaluate("bt", seed=5, changed={"epochs": 2}): the model is built from bt's preset with seed 5 and
    epochs 2, fitted on the train rows, evaluated on the test rows; the report names the overrides."""
    from types import SimpleNamespace

    from pluralign.eval import bench

    built: dict[str, Any] = {}

    def build(method: str, base: dict, **changes: Any) -> Any:
        built.update(method=method, base=base, **changes)
        return SimpleNamespace(fit=lambda data, progress=False: built.update(fitted=data))

    monkeypatch.setattr(bench, "preset", lambda method: {"preset_of": method})
    monkeypatch.setattr(bench, "build_model", build)
    monkeypatch.setattr(bench, "evaluate", lambda model, test, **kw: {"seen": {"accuracy": 0.5}, "on": test})
    monkeypatch.setattr(bench, "unseen_hits", lambda *args, **kw: [1, 0])
    report = bench.fit_and_evaluate("bt", "TRAIN", "TEST", seed=5, changed={"epochs": 2})
    assert built == {"method": "bt", "base": {"preset_of": "bt"}, "seed": 5, "epochs": 2, "fitted": "TRAIN"}
    assert report["on"] == "TEST" and report["overrides"] == "epochs=2" and report[bench.UNSEEN_HITS] == [1, 0]
