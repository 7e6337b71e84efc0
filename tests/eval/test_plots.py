"""plot_few_shot and plot_gaps: one PNG with a panel per benchmark, written atomically; the Bayes ceiling
drawn apart."""

import matplotlib.image as mpimg

from pluralign.eval.ceiling import CEILING
from pluralign.eval.plots import plot_few_shot, plot_gaps


def report(curve: list[float]) -> dict:
    return {"unseen": {str(k): {"accuracy": a, "oracle_accuracy": 0.9} for k, a in zip((0, 1, 2, 4, 8, 16), curve)}}


def test_plot_with_ceiling(tmp_path):
    results = {"pets": {"bt": report([0.7] * 6), "vpl": report([0.7, 0.75, 0.8, 0.83, 0.86, 0.88]),
                        CEILING: report([0.72, 0.76, 0.8, 0.85, 0.88, 0.89])},
               "cyclic": {"gpm": {"seen": {"accuracy": 0.89}}}}  # no unseen users: drawn as a flat line
    path = plot_few_shot(results, tmp_path / "curves.png")
    image = mpimg.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 2 * image.shape[0]  # two panels side by side
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]  # no temporary file left behind


def test_gap_plot_draws_the_benchmarks_with_intervals(tmp_path):
    def gap(points: float, se: float | None) -> dict:
        return {"unseen": {"8": {"gap_to_oracle": points / 100, "gap_to_oracle_se": se}}}

    results = {"pets": {"bt": gap(20, 0.01), "vpl": gap(1, 0.003), CEILING: gap(1, 0.004)},
               "ideal-points": {"pal-a": gap(5.8, 0.012)},
               "cyclic": {"gpm": {"seen": {"accuracy": 0.89}}, CEILING: gap(3, 0.01)}}  # no method's gap: no panel
    path = plot_gaps(results, tmp_path / "gaps.png")
    image = mpimg.imread(path)
    assert image.shape[1] > 1.5 * image.shape[0]  # two panels side by side, not three
    assert [p.name for p in tmp_path.iterdir()] == ["gaps.png"]
    assert plot_gaps({"pets": {"bt": gap(20, None)}}, tmp_path / "none.png") is None  # no interval: no plot
    assert not (tmp_path / "none.png").exists()


def test_gap_plot_joins_each_gap_to_its_gap_before(tmp_path, benchmark_script):
    """plot_gaps(before=...) and benchmarks/protocol_gain.py, which draws it and tables before → after."""
    import json

    def gap(points: float) -> dict:
        return {"unseen": {"8": {"gap_to_oracle": points / 100, "gap_to_oracle_se": 0.01}}}

    before = {"pets": {"bt": gap(20), "vpl": gap(7), CEILING: gap(1)}}
    after = {"pets": {"bt": gap(20), "vpl": gap(2), CEILING: gap(0)}, "cyclic": {"gpm": gap(3)}}
    plain = mpimg.imread(plot_gaps(after, tmp_path / "plain.png"))
    joined = mpimg.imread(plot_gaps(after, tmp_path / "joined.png", before=before, labels=("given", "chosen")))
    assert joined.shape == plain.shape and (joined != plain).any()  # the hollow points, lines and legend
    for name, results in (("a", {"mean": before}), ("b", after)):  # a mean over seeds, and one seed
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(results))
    table = benchmark_script("protocol_gain").main(["--before", str(tmp_path / "a"), "--after", str(tmp_path / "b")])
    assert "| vpl | 7.0 → 2.0 ± 2.0 |" in table and "cyclic" not in table  # only what both benches hold
    assert (tmp_path / "b" / "protocol_gain.png").exists() and (tmp_path / "b" / "protocol_gain.md").exists()


def test_few_shot_axis_has_no_unlabelled_minor_ticks(tmp_path, monkeypatch) -> None:
    """symlog draws minor ticks between the labelled k (one at ≈ 10, between 8 and 16) that read as a k of their
    own: the x axis has the labelled ticks only."""
    import pluralign.eval.plots as plots

    drawn = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, bottom=0.0: drawn.append(fig) or path)
    plot_few_shot({"pets": {"vpl": report([0.7, 0.75, 0.8, 0.83, 0.86, 0.88])}}, tmp_path / "curve.png")
    ax = drawn[0].axes[0]
    assert list(ax.xaxis.get_minorticklocs()) == []
    assert list(ax.get_xticks()) == [0, 1, 2, 4, 8, 16]
    plots.plt.close(drawn[0])
