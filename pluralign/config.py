"""Presets: YAML files of constructor arguments (``models/<method>.yaml``), read with clear errors."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Sequence

import yaml

from pluralign.methods import METHODS, ConfigError

PRESET_DIR = Path(__file__).resolve().parent.parent / "models"


def method_class(name: str):
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r} (known: {', '.join(METHODS)})")
    return METHODS[name]


def accepted_arguments(klass) -> set[str]:
    names: set[str] = set()
    for k in klass.__mro__[:-1]:
        params = inspect.signature(k.__init__).parameters
        names |= {n for n, p in params.items() if n != "self" and p.kind == p.POSITIONAL_OR_KEYWORD}
    return names


def load_config(path: str | Path, method: str) -> dict[str, Any]:
    """Constructor arguments from a YAML preset; an unknown key is an error naming the file and key."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such config file")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML ({err})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of constructor arguments")
    allowed = accepted_arguments(method_class(method))
    for key in config:
        if key not in allowed:
            raise ConfigError(f"{path}: unknown key {key!r} for method {method!r} (allowed: {', '.join(sorted(allowed))})")
    return config


def preset(method: str) -> dict[str, Any]:
    """The shipped preset of a method where the checkout has one, else the constructor defaults."""
    path = PRESET_DIR / f"{method}.yaml"
    return load_config(path, method) if path.exists() else {}


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` pairs as constructor arguments, each value read as YAML (``k=4`` is an int)."""
    parsed = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set {pair!r}: expected KEY=VALUE")
        key, value = pair.split("=", 1)
        parsed[key.strip()] = yaml.safe_load(value)
    return parsed


def parse_method_overrides(pairs: Sequence[str], methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``pluralign bench --set``: ``METHOD.KEY=VALUE`` overrides one method's preset, ``KEY=VALUE`` every
    method's; returns each method's overrides (checked against its constructor at once, before any fit)."""
    per_method: dict[str, dict[str, Any]] = {m: {} for m in methods}
    for pair in pairs:
        scope, _, rest = pair.partition(".")
        if "=" in scope or not rest:  # no method before the key: every method
            targets, assignment = list(methods), pair
        elif scope in per_method:
            targets, assignment = [scope], rest
        else:
            raise ValueError(f"--set {pair!r}: {scope!r} is not one of the methods run ({', '.join(methods)})")
        for method in targets:
            per_method[method].update(parse_overrides([assignment]))
    for method, overrides in per_method.items():
        build_model(method, preset(method), **overrides)  # a wrong key or value fails here, not after hours
    return {m: o for m, o in per_method.items() if o}


def build_model(method: str, config: dict[str, Any] | None = None, **overrides):
    klass = method_class(method)
    arguments = {**(config or {}), **overrides}
    unknown = set(arguments) - accepted_arguments(klass)
    if unknown:
        raise ConfigError(f"{method}: unknown argument(s) {', '.join(sorted(unknown))}")
    return klass(**arguments)
