"""``pluralign data``: the synthetic benchmarks, the dataset adapters and the split of a converted dataset by user."""

from __future__ import annotations

import inspect
import logging
import sys
import textwrap
from pathlib import Path
from typing import Sequence

from pluralign.io import counted


def data_list() -> None:
    """Print the synthetic benchmarks and the dataset adapters."""
    from pluralign.data.adapters import ADAPTERS
    from pluralign.data.synthetic import BENCHMARKS, builder_options

    def summary(name: str, function) -> str:
        """The docstring's first paragraph (its own, else its module's), wrapped beside NAME."""
        doc = function.__doc__ or sys.modules[function.__module__].__doc__ or ""
        text = " ".join(doc.strip().split("\n\n")[0].split()).removeprefix(f"``{name}``: ")
        return textwrap.fill(text, width=100, initial_indent=f"  {name:<20} ", subsequent_indent=" " * 23)

    print("benchmarks (pluralign data build NAME --out DIR [--set OPTION=VALUE]):")
    for name, build in BENCHMARKS.items():
        print(summary(name, build))
        options = ", ".join(f"{k}={v}" for k, v in builder_options(name).items())
        print(textwrap.fill(f"options: {options}", width=100, initial_indent=" " * 23, subsequent_indent=" " * 23))
    print("adapters (pluralign data convert NAME INPUT --out FILE [--set OPTION=VALUE]):")
    for name, adapter in ADAPTERS.items():
        print(summary(name, adapter))
        options = ", ".join(f"{p.name}={p.default}" for p in list(inspect.signature(adapter).parameters.values())[1:])
        if options:
            print(textwrap.fill(f"options: {options}", width=100, initial_indent=" " * 23, subsequent_indent=" " * 23))
    print("then, for fit and eval: pluralign data split FILE --out DIR (unseen users held out whole)")


def data_build(name: str, out: str, seed: int = 0, context: str = "random", options: Sequence[str] = ()) -> None:
    """Write DIR/train.jsonl, DIR/test.jsonl and DIR/README.md for a synthetic benchmark."""
    from pluralign.config import parse_overrides
    from pluralign.data.synthetic import build_benchmark
    from pluralign.io import check_output

    built = parse_overrides(options)
    for flag in ("seed", "context"):
        if flag in built:  # the builder's keyword, given as a flag: two values for one keyword
            raise ValueError(f"--set {flag}=...: use --{flag}")
    check_output(out, folder=True)
    bench = build_benchmark(name, seed=seed, context=context, **built)
    bench.write(out)
    print(f"wrote {out}/train.jsonl ({counted(len(bench.train), 'row')}), "
          f"{out}/test.jsonl ({counted(len(bench.test), 'row')}) and its card {out}/README.md")


def data_convert(adapter: str, source: str, out: str, options: Sequence[str] = ()) -> None:
    """Map a public dataset in its own format onto the contract, as JSONL; beside it, OUT's stem + .meta.json holds
    what the adapter recorded (its options, what it dropped, PersonalLLM's simulated users' weights)."""
    import json

    from pluralign.config import parse_overrides
    from pluralign.data.adapters import ADAPTERS, adapter_options
    from pluralign.io import check_output, jsonl_text, write_files

    keywords = adapter_options(adapter, parse_overrides(options))
    meta = Path(out).with_name(f"{Path(out).stem}.meta.json")
    if Path(source).is_dir() and Path(source).resolve() in Path(out).resolve().parents:
        # an adapter reads a folder's files whole: the output would replace one, or be read as raw data next time
        raise ValueError(f"--out {out}: inside SOURCE {source}, which the adapter reads whole; "
                         "choose a file outside it")
    check_output(out, inputs=[("SOURCE", source)], suffix=".jsonl")
    check_output(meta, inputs=[("SOURCE", source)])
    data = ADAPTERS[adapter](source, **keywords)
    if survey := data.meta.get("survey"):  # PRISM's participants, read beside SOURCE: not to be written over either
        for path in (out, meta):
            check_output(path, inputs=[("survey", survey)])
    record = {"source": source, "options": keywords, "n_rows": len(data), "n_users": len(data.user_ids), **data.meta}
    write_files({Path(out): jsonl_text(data.rows), meta: json.dumps(record, indent=2, default=str) + "\n"})
    print(f"wrote {out} ({counted(len(data), 'row')}) and {meta}")


def data_split(source: str, out: str, unseen_users: int | None = None, context: int = 16,
               test_fraction: float = 0.2, seed: int = 0, stratify: bool = False,
               hold_out_prompts: bool = False) -> None:
    """Split a dataset by user into DIR/train.jsonl and DIR/test.jsonl (held-out pairs of seen users; unseen
    users' context and query rows), for `fit` and `eval` on real data; with --hold-out-prompts, by prompt too."""
    from pluralign.data import read_preferences
    from pluralign.data.split import split_by_user
    from pluralign.io import check_output, jsonl_text, write_files

    check_output(out, folder=True, inputs=[("SOURCE", source)])
    if Path(source).is_dir():
        logging.getLogger("pluralign").warning("%s: a folder; splitting its train split alone", source)
    data = read_preferences(source)
    split = split_by_user(data, unseen_users, context, test_fraction, seed, stratify, hold_out_prompts)
    write_files({Path(out) / "train.jsonl": jsonl_text(split.train.rows),
                 Path(out) / "test.jsonl": jsonl_text(split.test.rows),
                 Path(out) / "README.md": split.card(source, seed, context, test_fraction, stratify,
                                                     hold_out_prompts)})
    trained, queries = split.pairs_in_training()["query"]
    if not hold_out_prompts and queries and trained > queries / 2:  # users label the same pairs (PersonalLLM, ...)
        logging.getLogger("pluralign").warning(
            "%s: %d of %d query rows are pairs that training holds, labelled by other users: the unseen users' "
            "figures measure those labels, not new pairs; --hold-out-prompts keeps the test's prompts out of "
            "training", source, trained, queries)
    print(f"wrote {out}/train.jsonl ({counted(len(split.train), 'row')}, "
          f"{counted(len(split.seen_users), 'seen user')}), "
          f"{out}/test.jsonl ({counted(len(split.test), 'row')}, {counted(len(split.unseen_users), 'unseen user')})")
