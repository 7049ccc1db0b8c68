# The two commands: `make run` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

# Use the shared data folder beside the checkout when it exists (no downloads needed).
ifneq ($(wildcard ../shared/data/mnist),)
export NABLANET_DATA ?= $(abspath ../shared/data)
endif

.PHONY: run test test-slow bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/nablanet train --out runs/default

test: $(VENV)/.installed-test
	$(PY) -m pytest -q

test-slow: $(VENV)/.installed-test
	$(PY) -m pytest -q -m slow

bench: $(VENV)/.installed
	$(PIP) install 'torch==2.13.0' scikit-learn threadpoolctl
	$(PY) benchmarks/mlp_epoch.py

clean:
	rm -rf $(VENV) runs build src/*.egg-info
