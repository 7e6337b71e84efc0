"""pluralign.config by hand: booleans are not integers, a preset's unknown key names the file, --set keys are
stripped, a subclass's type hint wins, a bench --set of a float (``lr=0.5``) reaches every method, a float
argument given a word is named, and a hint the checks do not know is left to the constructor."""

from __future__ import annotations

import re

import pytest

from pluralign.config import (
    argument_types, build_model, checked_arguments, load_config, parse_method_overrides, parse_overrides,
)
from pluralign.methods import ConfigError


def test_a_boolean_is_not_an_integer() -> None:
    """YAML reads ``epochs=true`` as True, which Python counts as the int 1: it must be refused."""
    with pytest.raises(ConfigError) as err:
        build_model("vpl", epochs=True)
    assert str(err.value) == "vpl: epochs=True must be an integer"


def test_a_presets_unknown_key_names_the_file_and_the_key(tmp_path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("k: 2\nbogus: 1\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, "pal-a")
    assert str(err.value).startswith(f"{path}: unknown key 'bogus' for method 'pal-a' (allowed: ")


def test_set_keys_are_stripped() -> None:
    assert parse_overrides([" k = 4", "lr= 1e-3"]) == {"k": 4, "lr": "1e-3"}


@pytest.mark.parametrize("pair, problem", [
    ("hidden=[64", "not valid YAML (expected ',' or ']', but got '<stream end>')"),
    ("group_by=a: b: c", "not valid YAML (mapping values are not allowed here)"),
    ("prompt_template=Summarize {post} #1 TL;DR", "YAML reads ' #' as the start of a comment and drops the rest"),
])
def test_a_set_value_yaml_cannot_read_or_would_cut_is_one_line(pair, problem) -> None:
    """YAML's errors were tracebacks, and ' #…' was cut from the value without a word."""
    key = pair.partition("=")[0]
    with pytest.raises(ValueError, match=re.escape(f"--set {pair!r}: {problem}; quote a text value: --set "
                                                   f"'{key}=\"...\"'")):
        parse_overrides([pair])
    assert parse_overrides(['prompt_template="Summarize {post} #1: TL;DR"', "tag=a#1"]) == {
        "prompt_template": "Summarize {post} #1: TL;DR", "tag": "a#1"}  # quoted, or no comment: kept whole


def test_a_subclass_type_hint_wins() -> None:
    class Base:
        def __init__(self, x: int = 1, y: str = "a") -> None: ...

    class Child(Base):
        def __init__(self, x: float | None = None, **kwargs) -> None: ...

    hints = argument_types(Child)
    assert hints["x"] == (float | None) and hints["y"] is str and "return" not in hints


def test_a_method_wide_float_override_reaches_every_method() -> None:
    """``lr=0.5`` holds a dot: it is still a KEY=VALUE for every method, not METHOD ``lr=0`` with key ``5``."""
    assert parse_method_overrides(["lr=0.5", "pal-a.k=3"], ["bt", "pal-a"]) == {
        "bt": {"lr": 0.5}, "pal-a": {"lr": 0.5, "k": 3}}


def test_a_float_argument_given_a_word_is_named() -> None:
    """``--set lr=fast`` (YAML reads it as a string that is not a number): refused, naming the argument."""
    with pytest.raises(ConfigError, match=r"^bt: lr='fast' must be a finite number$"):
        build_model("bt", **parse_overrides(["lr=fast"]))
    with pytest.raises(ConfigError, match=r"^pal-a: margin='1e-3x' must be a finite number$"):
        build_model("pal-a", **parse_overrides(["margin=1e-3x"]))


def test_a_hint_the_checks_do_not_know_is_left_to_the_constructor() -> None:
    """A constructor hint the checks do not know (a dict; no shipped method has one) passes the value through."""
    class Custom:
        name = "custom"

        def __init__(self, table: dict, rate: float = 0.1) -> None: ...

    table = {"a": 1}
    assert checked_arguments(Custom, {"table": table, "rate": "1e-2"}) == {"table": table, "rate": 0.01}
    assert checked_arguments(Custom, {"table": "not a dict"}) == {"table": "not a dict"}  # the constructor's to refuse


def test_a_key_set_twice_is_refused() -> None:
    """A second ``--set lr=...`` was kept silently (YAML presets refuse a key twice); a method's own value wins over
    every method's, in whichever order they come."""
    with pytest.raises(ValueError, match=r"^--set 'lr=2': lr is already set \(--set lr=1\)$"):
        parse_overrides(["lr=1", "lr=2"])
    with pytest.raises(ValueError, match=r"^--set 'vpl.lr=2': lr is already set \(--set vpl.lr=1\)$"):
        parse_method_overrides(["vpl.lr=1", "vpl.lr=2"], ["bt", "vpl"])
    assert parse_method_overrides(["vpl.lr=0.003", "lr=0.01"], ["bt", "vpl"]) == {
        "bt": {"lr": 0.01}, "vpl": {"lr": 0.003}}


@pytest.mark.parametrize("arguments, message", [
    ({"lr": "1e-3"}, "vpl: lr='1e-3' must be a finite number"),
    ({"hidden": 64}, "vpl: hidden=64 must be a list of integers"),
    ({"latent_dim": "8"}, "vpl: latent_dim='8' must be an integer"),
])
def test_a_constructor_called_in_python_names_an_argument_of_the_wrong_type(arguments, message) -> None:
    """``VPL(lr="1e-3")`` raised torch-free but raw "'>' not supported between 'str' and 'int'"."""
    from pluralign.methods import VPL

    with pytest.raises(ConfigError) as err:
        VPL(**arguments)
    assert str(err.value) == message
    with pytest.raises(ConfigError, match="latent_dim='8'"):
        VPL("8")  # positionally too
    assert build_model("vpl", lr="1e-3").lr == 1e-3  # a preset's string (YAML's reading of 1e-3) is still the number
