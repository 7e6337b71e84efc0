"""Reddit TL;DR comparisons with worker ids (Stiennon et al. 2020; ``openai/summarize-from-feedback``).

Format read: the ``comparisons`` files (``comparisons/batch*.json``, JSON lines despite the suffix; the
Hugging Face ``comparisons`` config has the same fields), one comparison per line: ``info`` {``id``,
``post``, ``title``, ``subreddit``, ``site``, ``article``}, ``summaries`` (two of {``text``, ``policy``,
``note``}), ``choice`` (0 or 1: the index of the preferred summary), ``worker`` (the labeller id),
``batch``, ``split`` and, in some batches, ``extra`` {``confidence``}.

Each comparison becomes one row: chosen = ``summaries[choice].text``, user_id = ``worker``. The prompt
is the usual TL;DR query built from ``info`` (``article`` stands in for ``post`` on the CNN/DM rows).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Collection

from pluralign.data.adapters._common import (
    SourcedRows, field, finish, input_files, is_missing, pair_problem, read_records,
)
from pluralign.data.contract import PreferenceSet, fail

REDDIT_TEMPLATE = "SUBREDDIT: r/{subreddit}\nTITLE: {title}\nPOST: {post}\n\nTL;DR:"
ARTICLE_TEMPLATE = "TITLE: {title}\nARTICLE: {article}\n\nTL;DR:"


def from_tldr(
    path: str | Path,
    splits: Collection[str] | None = None,
    prompt_template: str | None = None,
) -> PreferenceSet:
    """Read TL;DR comparisons: a ``batch*.json`` file or the ``comparisons`` folder of them.

    ``splits``: keep only comparisons whose ``split`` is one of these (e.g. ``{"train"}``); the others
    are counted under ``other_split``. ``prompt_template``: a ``str.format`` template over the ``info``
    fields (default: the Reddit TL;DR query, or the article query where ``post`` is empty).
    """
    rows = SourcedRows()
    dropped: Counter = Counter()
    for file in input_files(Path(path), (".json", ".jsonl")):
        source = str(file)
        for i, record in read_records(file):
            rows.at(source, i)
            if splits is not None and field(record, "split", source, i) not in splits:
                dropped["other_split"] += 1
                continue
            row = _comparison(record, source, i, prompt_template)
            problem = pair_problem(row["chosen"], row["rejected"])
            if problem:
                dropped[problem] += 1
                continue
            rows.append(row)
    return finish(rows, path, dropped, "tldr", splits=sorted(splits) if splits is not None else None)


def _comparison(record: dict, source: str, i: int, template: str | None) -> dict:
    info = field(record, "info", source, i, dict)
    summaries = field(record, "summaries", source, i, list)
    if len(summaries) != 2:
        raise fail(source, i, "summaries", f"expected 2 summaries, got {len(summaries)}")
    choice = field(record, "choice", source, i, int)
    if choice not in (0, 1):
        raise fail(source, i, "choice", f"expected 0 or 1, got {choice!r}")
    texts = [field(s, "text", source, i, str, f"summaries[{k}].text") for k, s in enumerate(summaries)]
    return {
        "prompt": _query(info, source, i, template),
        "chosen": texts[choice],
        "rejected": texts[1 - choice],
        "user_id": str(field(record, "worker", source, i, (str, int))),
    }


def _query(info: dict, source: str, i: int, template: str | None) -> str:
    values: dict[str, Any] = {k: ("" if is_missing(v) else v) for k, v in info.items()}
    if template is None:
        if values.get("post"):
            template = REDDIT_TEMPLATE
        elif values.get("article"):
            template = ARTICLE_TEMPLATE
        else:
            raise fail(source, i, "info.post", "missing (and no info.article either)")
    try:
        return template.format(**values)
    except KeyError as err:
        raise fail(source, i, "info", f"prompt_template needs field {err.args[0]!r}, absent here") from None
    except (IndexError, AttributeError, ValueError, TypeError) as err:  # "{0}", "{post.x}", a lone "{"
        raise ValueError(f"--set prompt_template={template!r}: not a template of the record's info fields "
                         f"({err}); write fields by name, e.g. 'POST: {{post}}', and double a literal brace") from None
