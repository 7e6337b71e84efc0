"""Plots people would rather look at than read: few-shot curves with the oracle drawn as a line, and each
method's gap to the oracle at k shots with its 95% interval beside what the Bayes ceiling leaves."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402

from pluralign.eval.ceiling import CEILING  # noqa: E402
from pluralign.eval.metrics import half_width  # noqa: E402
from pluralign.io import atomic_path  # noqa: E402


def plot_few_shot(results: dict[str, dict[str, dict]], path: str | Path) -> Path:
    """One panel per benchmark: unseen-user accuracy vs k for each method, the oracle dashed.

    ``results[benchmark][method]`` is an ``evaluate`` report. Panels without unseen users show the
    seen-user accuracy as a flat line so every method still appears. The entry :data:`CEILING` (the Bayes
    few-shot predictor that knows the generator, :mod:`pluralign.eval.ceiling`) is drawn in solid black.
    """
    benchmarks = list(results)
    cols = min(3, max(1, len(benchmarks)))
    rows = math.ceil(len(benchmarks) / cols)
    # one colour per method in every panel, and one legend for all of them, under the panels
    methods = [m for m in dict.fromkeys(m for by_method in results.values() for m in by_method) if m != CEILING]
    per_row = max(3, round(3.3 * cols))  # legend entries that fit across the figure
    legend_height = 0.15 + 0.25 * math.ceil((len(methods) + 2) / per_row)  # inches: methods, ceiling, oracle
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows + legend_height), squeeze=False)
    colours = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    for ax, bench in zip(axes.flat, benchmarks):
        oracle, last_k = None, 16
        for method, report in results[bench].items():
            unseen = report.get("unseen") or {}
            if unseen:
                ks = sorted(int(k) for k in unseen)
                style = (dict(color="black", linewidth=2) if method == CEILING
                         else dict(marker="o", color=colours[method]))
                ax.plot(ks, [unseen[str(k)]["accuracy"] for k in ks], label=method, **style)
                last_k = max(last_k, ks[-1])
                oracle = oracle or [unseen[str(k)].get("oracle_accuracy") for k in ks]
            elif "accuracy" in report.get("seen", {}):
                ax.axhline(report["seen"]["accuracy"], linestyle=":", color=colours.get(method, "grey"),
                           label=f"{method} (seen)")
        if oracle and oracle[0] is not None:
            ax.axhline(oracle[0], color="black", linestyle="--", label="oracle")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xticks([0, 1, 2, 4, 8, 16])
        ax.set_xticklabels(["0", "1", "2", "4", "8", "16"])
        ax.xaxis.set_minor_locator(NullLocator())  # symlog's minor ticks read as an unlabelled k (one at ≈ 10)
        ax.set_xlim(-0.4, 1.35 * last_k)  # the margins symlog's autoscale leaves are too thin for the last marker
        ax.set_title(bench)
        ax.set_xlabel("context pairs of the new user (k)")
        ax.set_ylabel("accuracy on query pairs")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(benchmarks):]:
        ax.axis("off")
    legend = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=min(len(legend), per_row), fontsize=8,
               frameon=False)
    return save_figure(fig, path, bottom=legend_height / (3.6 * rows + legend_height))


def plot_gaps(results: dict[str, dict[str, dict]], path: str | Path, k: int = 8,
              before: dict[str, dict[str, dict]] | None = None, labels: tuple[str, str] = ("before", "after")
              ) -> Path | None:
    """One panel per benchmark with unseen users: each method's gap to the oracle at ``k`` shots, in points,
    ± its 95% interval over the unseen users (the bench's gap table, drawn). The Bayes
    ceiling's gap (:data:`CEILING`, what k pairs leave unknown to any method) is the last row, in black, with a
    dotted line through it: no method is expected to the left of it. ``before`` (the same methods under
    another protocol or setting) draws each method's gap there as a hollow grey point joined to this one, with
    ``labels`` naming the two in a legend. Nothing is written (None) when no report carries a gap with its
    standard error."""
    def gap(report: dict) -> tuple[float, float] | None:
        entry = (report.get("unseen") or {}).get(str(k)) or {}
        if (half := half_width(entry, "gap_to_oracle_se")) is None:
            return None
        return 100 * entry["gap_to_oracle"], 100 * half

    every = {b: {m: gap(r) for m, r in by_method.items()} for b, by_method in results.items()}
    panels = {b: {m: g for m, g in gaps.items() if g} for b, gaps in every.items()}
    panels = {b: gaps for b, gaps in panels.items() if any(m != CEILING for m in gaps)}
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    height = max(2.0, 0.35 * max(len(g) for g in panels.values()) + 1.0)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, height * rows), squeeze=False)
    for ax, (bench, gaps) in zip(axes.flat, panels.items()):
        rows_ = [m for m in gaps if m != CEILING] + ([CEILING] if CEILING in gaps else [])
        for y, method in enumerate(rows_):
            earlier = gap(((before or {}).get(bench) or {}).get(method) or {})
            if earlier is not None:
                ax.plot([earlier[0], gaps[method][0]], [y, y], color="grey", linewidth=1, zorder=1)
                ax.plot(earlier[0], y, "o", markerfacecolor="white", markeredgecolor="grey", zorder=2)
            ax.errorbar(gaps[method][0], y, xerr=gaps[method][1], fmt="o", capsize=3,
                        color="black" if method == CEILING else "C0", zorder=3)
        if CEILING in gaps:
            ax.axvline(gaps[CEILING][0], color="black", linestyle=":", linewidth=1)
        ax.axvline(0, color="black", linestyle="--", linewidth=1)  # the oracle
        ax.set_yticks(range(len(rows_)))
        ax.set_yticklabels(rows_)
        ax.invert_yaxis()
        ax.set_title(bench)
        ax.set_xlabel(f"points under the oracle, k = {k} (95% interval)")
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if before is None:
        return save_figure(fig, path)
    handles = [plt.Line2D([], [], marker="o", linestyle="", markerfacecolor="white", markeredgecolor="grey"),
               plt.Line2D([], [], marker="o", linestyle="", color="C0")]
    fig.legend(handles, list(labels), loc="lower center", ncol=2, frameon=False)
    return save_figure(fig, path, bottom=0.5 / (height * rows))


def save_figure(fig, path: str | Path, bottom: float = 0.0) -> Path:
    """Lay out (leaving ``bottom``, a fraction of the height, for a figure legend), write as PNG atomically
    (no half-written plot) and close the figure."""
    fig.tight_layout(rect=(0, bottom, 1, 1))
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
