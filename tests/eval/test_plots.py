"""plot_few_shot: one PNG with a panel per benchmark, written atomically; the Bayes ceiling drawn apart."""

import matplotlib.image as mpimg

from pluralign.eval.ceiling import CEILING
from pluralign.eval.plots import plot_few_shot


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
