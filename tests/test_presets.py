"""Every preset in models/: its first comment is the command that runs it, and it builds that method."""

import re
import shlex
from pathlib import Path

import pytest

from pluralign.config import build_model, load_config
from pluralign.methods import ConfigError

ROOT = Path(__file__).resolve().parent.parent
PRESETS = sorted((ROOT / "models").glob("*.yaml"))


def test_there_are_presets():
    assert {p.stem for p in PRESETS} >= {"bt", "vpl", "pal-a", "pal-b", "micro", "gpm", "maxmin"}


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_runs_as_its_first_comment_says(path):
    first = path.read_text().splitlines()[0]
    fit = re.search(r"pluralign fit (.+)$", first)
    assert first.startswith("# ") and fit, f"{path.name}: first line should be the command that runs it"
    words = shlex.split(fit.group(1))
    method = words[0]
    assert words[words.index("--config") + 1] == f"models/{path.name}"
    data = words[words.index("--data") + 1]  # shipped (data/pets), or built by the command's first half
    assert (ROOT / data).exists() or f"--out {data} && " in first, f"{path.name}: {data} is neither shipped nor built"
    model = build_model(method, load_config(path, method))
    assert model.name == method


@pytest.mark.parametrize("argument, value, message", [
    ("epochs", "abc", "vpl: epochs='abc' must be an integer"),
    ("epochs", 3.0, "vpl: epochs=3.0 must be an integer"),
    ("hidden", 64, "vpl: hidden=64 must be a list of integers"),
    ("normalize_z", "yes", "vpl: normalize_z='yes' must be true or false"),
    ("backbone", 3, "vpl: backbone=3 must be a string or null"),
])
def test_argument_of_the_wrong_type_is_named(argument, value, message):
    with pytest.raises(ConfigError) as err:
        build_model("vpl", **{argument: value})
    assert str(err.value) == message


def test_float_written_with_an_exponent_is_a_number():
    # YAML 1.1 (PyYAML) reads `1e-3` as a string: `--set lr=1e-3` must still mean 0.001
    assert build_model("vpl", lr="1e-3").lr == pytest.approx(1e-3)


def test_broken_preset_file_is_one_line_naming_where(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("k: 3\n  epochs: 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(broken, "pal-a")
    assert str(err.value) == f"{broken}, line 2, column 9: invalid YAML (mapping values are not allowed here)"
    repeated = tmp_path / "repeated.yaml"  # safe_load would keep the last lr silently
    repeated.write_text("lr: 0.1\nepochs: 3\nlr: 0.2\n")
    with pytest.raises(ConfigError) as err:
        load_config(repeated, "pal-a")
    assert str(err.value) == f"{repeated}, line 3, column 1: invalid YAML (key 'lr' given twice)"
    listed = tmp_path / "listed.yaml"
    listed.write_text("- 3\n")
    with pytest.raises(ConfigError, match="expected a mapping of constructor arguments"):
        load_config(listed, "pal-a")


def test_an_installed_package_reads_its_own_presets(tmp_path, monkeypatch):
    from pluralign import config

    installed = tmp_path / "presets"
    installed.mkdir()
    (installed / "pal-a.yaml").write_text("k: 5\n")
    monkeypatch.setattr(config, "INSTALLED_PRESETS", installed)
    assert config.preset("pal-a") == {"k": 5}  # the package's copy, not the checkout's models/
    monkeypatch.setattr(config, "INSTALLED_PRESETS", tmp_path / "absent")
    assert config.preset("pal-a") == load_config(PRESETS[0].parent / "pal-a.yaml", "pal-a")  # a checkout
    with pytest.raises(ConfigError) as err:  # installed, the README's `--config models/vpl.yaml` is not there
        config.load_config(tmp_path / "models" / "pal-a.yaml", "pal-a")
    assert str(err.value) == (f"{tmp_path / 'models' / 'pal-a.yaml'}: no such config file (the shipped pal-a preset "
                              f"is {config.CHECKOUT_PRESETS / 'pal-a.yaml'}; fit reads it without --config)")
    monkeypatch.setattr(config, "CHECKOUT_PRESETS", tmp_path / "absent too")
    with pytest.raises(ConfigError, match="no presets found"):
        config.preset("pal-a")
    with pytest.raises(ConfigError, match=r"presets: is a folder; --config takes a YAML file"):  # was "Is a directory"
        config.load_config(installed, "pal-a")


def test_the_wheel_and_the_sdist_carry_every_preset(tmp_path):
    """setup.py copies models/*.yaml into the package: an installed pluralign fits the models the README measures."""
    import shutil
    import subprocess
    import sys
    import tarfile
    import zipfile

    root = PRESETS[0].parent.parent
    source = tmp_path / "source"  # a copy, so that the build writes nothing into the checkout
    source.mkdir()
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md"):
        shutil.copy(root / name, source / name)
    for folder in ("pluralign", "models"):
        shutil.copytree(root / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    build = ("from setuptools import build_meta as b; import sys; "
             "print(getattr(b, 'build_' + sys.argv[1])(sys.argv[2]))")
    subprocess.run([sys.executable, "-c", build, "sdist", str(tmp_path)], cwd=source, check=True,
                   capture_output=True)
    sdist = next(tmp_path.glob("pluralign-*.tar.gz"))
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
        in_sdist = {Path(n).name for n in archive.getnames() if "/models/" in n and n.endswith(".yaml")}
    assert in_sdist == {p.name for p in PRESETS}
    unpacked = next((tmp_path / "unpacked").iterdir())
    subprocess.run([sys.executable, "-c", build, "wheel", str(tmp_path)], cwd=unpacked, check=True,
                   capture_output=True)  # the wheel as pip builds it from the sdist
    with zipfile.ZipFile(next(tmp_path.glob("pluralign-*.whl"))) as wheel:
        for path in PRESETS:
            assert wheel.read(f"pluralign/presets/{path.name}") == path.read_bytes()


@pytest.mark.parametrize("method", ["bt", "micro", "gpm", "maxmin", "pal-a", "pal-b", "vpl"])
def test_the_constructors_defaults_are_the_shipped_preset(method):
    """`METHODS[m]()` in Python builds the model `pluralign fit m` builds and the README measures."""
    from pluralign.config import preset
    from pluralign.methods import METHODS

    defaults = METHODS[method]().get_config()
    for key, value in preset(method).items():
        expected = list(value) if isinstance(value, list) else value
        found = list(defaults[key]) if isinstance(defaults[key], (list, tuple)) else defaults[key]
        assert found == pytest.approx(expected), f"{method}: {key}"


def test_a_run_saved_before_an_argument_existed_loads_as_it_was_fitted(tmp_path):
    import json

    from conftest import two_group_rows
    from pluralign.data import PreferenceSet
    from pluralign.methods import PreferenceModel
    from pluralign.methods.pal import PalA

    train, _ = two_group_rows()
    squared = PalA(distance="squared", k=2, epochs=2).fit(PreferenceSet.from_rows(train), progress=False)
    squared.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["config"]["distance"]  # as written before 2026-11-27, when PAL-A had only the squared distance
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert PalA().distance == "euclidean" and PreferenceModel.from_pretrained(tmp_path).distance == "squared"
