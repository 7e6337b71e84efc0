"""Adapters from public preference datasets, in their own file formats, onto the preference contract.

Each adapter is ``from_X(path, **options) -> PreferenceSet``; ``ADAPTERS`` maps the dataset name to it, and
:func:`adapter_options` checks options given as text (``pluralign data convert --set``) against its signature.
"""

from __future__ import annotations

import inspect
from typing import Any

from pluralign.data.adapters.personalllm import from_personalllm
from pluralign.data.adapters.pickapic import from_pickapic
from pluralign.data.adapters.prism import from_prism
from pluralign.data.adapters.psoups import from_psoups
from pluralign.data.adapters.tldr import from_tldr
from pluralign.data.adapters.ultrafeedback import from_ultrafeedback

ADAPTERS = {
    "prism": from_prism,
    "tldr": from_tldr,
    "psoups": from_psoups,
    "ultrafeedback": from_ultrafeedback,
    "personalllm": from_personalllm,
    "pickapic": from_pickapic,
}

# the Python types an annotation's words admit (``str | Path | None``, ``Sequence[str]``): what --set's YAML gives
_ANNOTATED_TYPES = {"None": (type(None),), "bool": (bool,), "int": (int,), "float": (int, float), "str": (str,),
                    "Path": (str,), "Sequence": (list,), "Collection": (list,), "Mapping": (dict,)}


def adapter_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for adapter ``name``, each a keyword it takes with a value of a type its annotation admits (a
    bool is no int); else a one-line error naming the option and what the adapter takes."""
    if name not in ADAPTERS:
        raise ValueError(f"unknown adapter {name!r} (known: {', '.join(ADAPTERS)})")
    parameters = {p.name: p for p in list(inspect.signature(ADAPTERS[name]).parameters.values())[1:]}
    for key, value in options.items():
        if key not in parameters:
            known = ", ".join(parameters) or "none"
            raise ValueError(f"--set {key}: adapter {name} has no option {key!r} (its options: {known})")
        annotation = str(parameters[key].annotation)
        words = [w.strip().split("[")[0] for w in _top_level(annotation)]
        kinds = tuple(t for w in words for t in _ANNOTATED_TYPES.get(w, ()))
        if not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds:
            hint = (f" (YAML read a mapping or list: quote a text value, --set '{key}=\"...\"')"
                    if str in kinds and isinstance(value, (dict, list)) else "")
            raise ValueError(f"--set {key}={value!r}: adapter {name}'s {key} is {annotation}{hint}")
    return options


def _top_level(annotation: str) -> list[str]:
    """An annotation's alternatives, split at the '|' outside brackets: Mapping[str, A | B] | None is a mapping
    or None (its values' alternatives are no alternatives of its own)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(annotation):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "|" and depth == 0:
            parts.append(annotation[start:i])
            start = i + 1
    return [*parts, annotation[start:]]


__all__ = [
    "ADAPTERS", "adapter_options", "from_personalllm", "from_pickapic", "from_prism", "from_psoups", "from_tldr",
    "from_ultrafeedback",
]
