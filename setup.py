"""Ships the presets of ``models/*.yaml`` inside the package, as ``pluralign/presets/``.

Why: the presets live beside their model cards in the checkout's ``models/`` (the issues ask for them there),
which is outside the package. Without this, an installed wheel would find no preset and ``pluralign fit pal-a``
would silently build the constructor's defaults, a different model from the one the README measures. Everything
else about the package is declared in setup.cfg.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithPresets(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "pluralign" / "presets"
        self.mkpath(str(target))
        for preset in sorted(Path("models").glob("*.yaml")):
            self.copy_file(str(preset), str(target / preset.name))


setup(cmdclass={"build_py": BuildPyWithPresets})
