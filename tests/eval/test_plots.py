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
