"""``pluralign bench``: every method on every benchmark, one Markdown + JSON table and few-shot curves."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from pluralign.config import build_model, preset
from pluralign.data.contract import PreferenceSet
from pluralign.data.synthetic import BENCHMARKS, build_benchmark
from pluralign.eval.plots import plot_few_shot
from pluralign.eval.protocol import evaluate
from pluralign.io import write_json, write_text

log = logging.getLogger("pluralign.bench")


def _cell(metrics: dict | None, with_oracle: bool = True) -> str:
    if not metrics or "accuracy" not in metrics:
        return "–"
    text = f"{metrics['accuracy']:.3f}"
    if with_oracle and metrics.get("oracle_accuracy") is not None:
        text += f" ({metrics['oracle_accuracy']:.3f})"
    return text


def table(results: dict[str, dict[str, dict]], shots: Sequence[int] = (0, 8)) -> str:
    """Markdown: accuracy with the oracle's in parentheses, on the same rows."""
    head = ["benchmark", "method", "seen", "controversial", *[f"unseen k={k}" for k in shots],
            "unseen contr. k=8", "worst group", "fit s", "pairs/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for bench, by_method in results.items():
        for method, r in by_method.items():
            unseen = r.get("unseen", {})
            worst = r.get("worst_group")
            cells = [bench, method, _cell(r.get("seen")), _cell(r.get("controversial")),
                     *[_cell(unseen.get(str(k))) for k in shots],
                     _cell(unseen.get("8", {}).get("controversial")),
                     f"{worst['group']}: {_cell(worst)}" if worst else "–",
                     f"{r['fit'].get('fit_seconds', 0):.1f}", f"{r['fit'].get('pairs_per_second', 0):,.0f}"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\nCells: accuracy (oracle accuracy on the same rows).\n"


def benchmark_data(name: str, seed: int = 0, **sizes) -> tuple[PreferenceSet, PreferenceSet]:
    """A synthetic benchmark's (train, test) rows, built in memory (deterministic by seed)."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r} (known: {', '.join(BENCHMARKS)})")
    bench = build_benchmark(name, seed=seed, **sizes)
    return (PreferenceSet.from_rows(bench.train, f"{name}/train"), PreferenceSet.from_rows(bench.test, f"{name}/test"))


def run_bench(methods: Sequence[str], datasets: dict[str, tuple[PreferenceSet, PreferenceSet]],
              out_dir: str | Path, seed: int = 0, progress: bool = False, overrides: dict | None = None) -> dict:
    """Fit each method (its shipped preset) on each dataset's train rows and evaluate on its test rows;
    writes results.json, results.md and few_shot.png into ``out_dir``."""
    out_dir = Path(out_dir)
    results: dict[str, dict[str, dict]] = {}
    for name, (train, test) in datasets.items():
        results[name] = {}
        for method in methods:
            log.info("bench: %s on %s", method, name)
            model = build_model(method, preset(method), **{"seed": seed, **(overrides or {})})
            model.fit(train, progress=progress)
            results[name][method] = evaluate(model, test)
            write_json(out_dir / "results.json", results)  # partial results survive an interruption
    write_text(out_dir / "results.md", table(results))
    plot_few_shot(results, out_dir / "few_shot.png")
    return results
