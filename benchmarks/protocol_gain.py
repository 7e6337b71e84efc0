"""What a change of protocol (or setting) does to every method's few-shot gap: two benches side by side.

    python benchmarks/protocol_gain.py --before benchmarks/results/seeds-random \
        --after benchmarks/results/seeds-active [--labels "file order" "chosen questions"] [--k 8] \
        [--out benchmarks/results/seeds-active/protocol_gain]

Reads each folder's results.json (the mean over seeds where there are several) and writes OUT.md, a table of
each method's gap to the oracle at k shots on every benchmark, "before → after ± the after figure's 95%
interval" in points, and OUT.png, the after bench's gap plot with each before gap drawn as a hollow point
joined to it. Both benches should be of the same models (the same presets and seeds), as with
`pluralign bench` and `pluralign bench --active`; a method or benchmark missing from one side is left out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pluralign.eval.metrics import half_width
from pluralign.eval.plots import plot_gaps
from pluralign.io import write_text


def load(folder: str) -> dict:
    """A bench folder's results: the mean over seeds where it has several, else the single seed's."""
    results = json.loads((Path(folder) / "results.json").read_text())
    return results["mean"] if "mean" in results else results


def gap_cell(entry: dict | None) -> str | None:
    if not entry or entry.get("gap_to_oracle") is None:
        return None
    text = f"{100 * entry['gap_to_oracle']:.1f}"
    half = half_width(entry, "gap_to_oracle_se")
    return text if half is None else text + f" ± {100 * half:.1f}"


def gain_table(before: dict, after: dict, k: int = 8) -> str:
    """Markdown: a row per method, a column per benchmark both benches hold; each cell before → after."""
    benches = [b for b in after if b in before]
    methods = list(dict.fromkeys(m for b in benches for m in after[b] if m in before[b]))
    lines = [f"| k = {k}, points under the oracle | " + " | ".join(f"`{b}`" for b in benches) + " |",
             "|---|" + "---|" * len(benches)]
    for method in methods:
        cells = []
        for bench in benches:
            old = gap_cell(before[bench].get(method, {}).get("unseen", {}).get(str(k)))
            new = gap_cell(after[bench].get(method, {}).get("unseen", {}).get(str(k)))
            cells.append("–" if old is None or new is None else f"{old.split(' ±')[0]} → {new}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="a bench folder (results.json)")
    parser.add_argument("--after", required=True, help="a bench folder of the same models, another protocol")
    parser.add_argument("--labels", nargs=2, default=["file order", "chosen questions"], metavar=("BEFORE", "AFTER"))
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--out", default=None, help="default: AFTER/protocol_gain (writes .md and .png)")
    args = parser.parse_args(argv)
    before, after = load(args.before), load(args.after)
    out = Path(args.out or Path(args.after) / "protocol_gain")
    table = gain_table(before, after, args.k)
    note = (f"\nGap to the oracle at k = {args.k}, in points: {args.labels[0]} ({args.before}) → {args.labels[1]} "
            f"({args.after}), ± a 95% interval over the unseen users of the second (Student's t; the normal "
            "quantile for a record written before 2026-11-29).\n")
    write_text(out.with_suffix(".md"), table + note)
    plot_gaps(after, out.with_suffix(".png"), args.k, before=before, labels=tuple(args.labels))
    print(table + note)
    return table


if __name__ == "__main__":
    main()
