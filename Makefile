# `make demo`: set up .venv and run the main job on the shipped default data.
# `make test`: set up .venv and run the test suite. Nothing downloads at run or test time.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test coverage bench clean

$(VENV)/.installed: setup.cfg setup.py pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,rl]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m pluralign.cli demo --out demo

test: install
	$(PY) -m pytest -q

coverage: install
	$(PY) -m pip install --quiet --disable-pip-version-check coverage
	$(PY) -m coverage run --branch --data-file=$(VENV)/.coverage --source=pluralign -m pytest -q
	$(PY) -m coverage report -m --skip-covered --data-file=$(VENV)/.coverage

bench: install
	$(PY) benchmarks/embedding_throughput.py
	$(PY) benchmarks/fit_speed.py

clean:
	rm -rf $(VENV) demo .pytest_cache *.egg-info
