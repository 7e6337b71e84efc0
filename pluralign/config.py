"""Presets: YAML files of constructor arguments (``models/<method>.yaml``), read with clear errors."""

from __future__ import annotations

import collections.abc
import inspect
import math
import numbers
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from pluralign.methods import METHODS, ConfigError

# an installed package carries its presets (setup.py copies them there); a checkout reads them from models/
INSTALLED_PRESETS = Path(__file__).resolve().parent / "presets"
CHECKOUT_PRESETS = Path(__file__).resolve().parent.parent / "models"


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


def check_known_arguments(klass, names: Iterable[str], method: str | None = None) -> None:
    """A constructor argument ``klass`` does not take (a --set, --config or keyword typo) is a one-line
    :class:`ConfigError` naming it with the accepted ones."""
    if unknown := sorted(set(names) - accepted_arguments(klass)):
        raise ConfigError(f"{method or klass.name}: unknown argument(s) {', '.join(unknown)} (accepted: "
                          f"{', '.join(sorted(accepted_arguments(klass)))})")


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load's loader, refusing a key given twice (safe_load keeps the last silently: a preset edited by
    appending ``lr: ...`` below the first would train with whichever came last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path, method: str) -> dict[str, Any]:
    """Constructor arguments from a YAML preset; an unknown key is an error naming the file and key."""
    path = Path(path)
    if not path.exists():
        shipped = next((d / path.name for d in (INSTALLED_PRESETS, CHECKOUT_PRESETS) if (d / path.name).exists()), None)
        hint = f" (the shipped {shipped.stem} preset is {shipped}; fit reads it without --config)" if shipped else ""
        raise ConfigError(f"{path}: no such config file{hint}")
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; --config takes a YAML file of constructor arguments (as models/*.yaml)")
    try:
        config = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)  # where the parser stopped, 0-based
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{path}{where}: invalid YAML ({problem})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of constructor arguments")
    allowed = accepted_arguments(method_class(method))
    for key in config:
        if key not in allowed:
            raise ConfigError(f"{path}: unknown key {key!r} for method {method!r} (allowed: {', '.join(sorted(allowed))})")
    return config


def preset_dir() -> Path:
    """Where the shipped presets are: the installed package's copy, else the checkout's ``models/``."""
    if INSTALLED_PRESETS.is_dir():
        return INSTALLED_PRESETS
    if CHECKOUT_PRESETS.is_dir():
        return CHECKOUT_PRESETS
    raise ConfigError(f"no presets found ({INSTALLED_PRESETS} nor {CHECKOUT_PRESETS}): reinstall pluralign, or "
                      "pass --config FILE")


def preset(method: str) -> dict[str, Any]:
    """The shipped preset of a method (every method has one; a method without its file gets the constructor
    defaults)."""
    path = preset_dir() / f"{method}.yaml"
    return load_config(path, method) if path.exists() else {}


def parse_overrides(pairs: Sequence[str], flag: str = "--set") -> dict[str, Any]:
    """``--set KEY=VALUE`` pairs as constructor arguments, each value read as YAML (``k=4`` is an int). A blank
    key or value is refused here: it would reach the constructor as an argument named '' or as None, and the
    error would not say which entry was wrong."""
    parsed, given = {}, {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip() or not value.strip():
            raise ValueError(f"{flag} {pair!r}: expected KEY=VALUE (write KEY=null for none)")
        if key.strip() in parsed:  # as YAML refuses a key twice: which one was meant?
            raise ValueError(f"{flag} {pair!r}: {key.strip()} is already set ({flag} {given[key.strip()]})")
        parsed[key.strip()], given[key.strip()] = read_value(value, pair, flag), pair
    return parsed


def read_value(value: str, pair: str, flag: str = "--set") -> Any:
    """A ``--set`` value as YAML reads it; one line where YAML cannot, or where it would drop a ' #…' comment."""
    key = pair.partition("=")[0].strip()
    quote = f"quote a text value: {flag} '{key}=\"...\"'"
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as err:
        problem = str(getattr(err, "problem", None) or err).splitlines()[0]
        raise ValueError(f"{flag} {pair!r}: not valid YAML ({problem}); {quote}") from None
    if "#" in value and "#" not in yaml.safe_dump(parsed):  # "a #1": YAML's comment, cut without a word
        raise ValueError(f"{flag} {pair!r}: YAML reads ' #' as the start of a comment and drops the rest; {quote}")
    return parsed


def parse_method_overrides(pairs: Sequence[str], methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``pluralign bench --set``: ``METHOD.KEY=VALUE`` overrides one method's preset, ``KEY=VALUE`` every
    method's (a method's own value wins, in any order); returns each method's overrides (checked against its
    constructor at once, before any fit)."""
    scoped = []  # (method, or "" for every method; KEY=VALUE; the entry as given)
    for pair in pairs:
        scope, _, rest = pair.partition(".")
        if "=" in scope or not rest:  # no method before the key: every method
            scope, rest = "", pair
        elif scope not in methods:
            raise ValueError(f"--set {pair!r}: {scope!r} is not one of the methods run ({', '.join(methods)})")
        key, equals, value = rest.partition("=")
        if not equals or not key.strip() or not value.strip():  # "pal-a.=3": name the whole entry, not "=3"
            raise ValueError(f"--set {pair!r}: expected KEY=VALUE or METHOD.KEY=VALUE (write KEY=null for none)")
        earlier = [p for s, r, p in scoped if s == scope and r.partition("=")[0].strip() == key.strip()]
        if earlier:
            raise ValueError(f"--set {pair!r}: {key.strip()} is already set (--set {earlier[0]})")
        scoped.append((scope, rest, pair))
    own = {(scope, rest.partition("=")[0].strip()) for scope, rest, _ in scoped if scope}
    per_method: dict[str, dict[str, Any]] = {m: {} for m in methods}
    for scope, assignment, _ in scoped:  # in the order given, a method's own value never replaced
        key = assignment.partition("=")[0].strip()
        for method in [scope] if scope else [m for m in methods if (m, key) not in own]:
            per_method[method].update(parse_overrides([assignment]))
    for method, overrides in per_method.items():
        build_model(method, preset(method), **overrides)  # a wrong key or value fails here, not after hours
    return {m: o for m, o in per_method.items() if o}


def argument_types(klass) -> dict[str, Any]:
    """The constructor's type hints over the class hierarchy (a subclass's hint wins)."""
    hints: dict[str, Any] = {}
    for k in reversed(klass.__mro__[:-1]):
        hints.update(typing.get_type_hints(k.__init__))
    hints.pop("return", None)
    return hints


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if typing.get_origin(hint) in (collections.abc.Sequence, list, tuple):
        return f"a list of {_describe(typing.get_args(hint)[0]).split(' ', 1)[-1]}s"
    names = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string", type(None): "null"}
    return names.get(hint, str(hint))


def conform(value: Any, hint: Any, parse_strings: bool = True) -> tuple[bool, Any]:
    """Whether ``value`` fits the type ``hint``, and the value to use: a float written as ``1e-3`` (which YAML
    reads as a string) becomes the number, unless ``parse_strings`` is off (a constructor called in Python gets
    the string itself); inf and nan do not fit (an infinite lr trains weights to NaN). Hints this does not know
    are left to the constructor."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            ok, converted = conform(value, option, parse_strings)
            if ok:
                return True, converted
        return False, value
    if origin in (collections.abc.Sequence, list, tuple):
        if not isinstance(value, (list, tuple)):
            return False, value
        items = [conform(v, typing.get_args(hint)[0], parse_strings) for v in value]
        return all(ok for ok, _ in items), [v for _, v in items]
    if hint is type(None):
        return value is None, value
    if hint is bool:
        return isinstance(value, bool), value
    # numpy's scalars (a sweep's np.int64, rng.integers' seeds) are the Python numbers they stand for
    if hint is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        return ok, int(value) if ok else value
    if hint is float:
        if isinstance(value, str) and parse_strings:
            try:
                value = float(value)
            except ValueError:
                return False, value
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        return ok, float(value) if ok and not isinstance(value, int) else value
    if hint is str:
        return isinstance(value, str), value
    return True, value


def build_model(method: str, config: dict[str, Any] | None = None, **overrides):
    """The estimator of ``method`` from preset arguments and overrides; an unknown argument or one of the
    wrong type is a one-line :class:`ConfigError` naming it."""
    klass = method_class(method)
    arguments = {**(config or {}), **overrides}
    check_known_arguments(klass, arguments, method)
    return klass(**checked_arguments(klass, arguments))


def checked_arguments(klass, arguments: dict[str, Any], parse_strings: bool = True) -> dict[str, Any]:
    """``arguments`` conformed to ``klass``'s constructor hints (``1e-3`` as a string becomes the number, unless
    ``parse_strings`` is off); a value of the wrong type, or not finite, is a one-line :class:`ConfigError` naming
    the method and the argument."""
    hints, checked = argument_types(klass), dict(arguments)
    for name, value in arguments.items():
        if name in hints:
            ok, checked[name] = conform(value, hints[name], parse_strings)
            if not ok:
                raise ConfigError(f"{klass.name}: {name}={value!r} must be {_describe(hints[name])}")
    return checked
