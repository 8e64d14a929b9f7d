# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export KERAS_BACKEND := torch
# In this project's checkouts the FSDD recordings sit in ../shared/data; elsewhere set MINIDL_DATA
# yourself, or let minidl find ~/.cache/minidl/fsdd or download the recordings there.
ifeq ($(MINIDL_DATA),)
ifneq ($(wildcard ../shared/data/fsdd/recordings),)
export MINIDL_DATA := $(abspath ../shared/data)
endif
endif

.PHONY: demo spiral test test-all venv clean bench

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.core: $(BIN)/activate pyproject.toml
	$(BIN)/python -m pip install -q -e ".[plot]"
	touch $@

$(VENV)/.test: $(VENV)/.core
	$(BIN)/python -m pip install -q -e ".[plot,test]"
	touch $@

$(VENV)/.reference: $(VENV)/.test
	$(BIN)/python -m pip install -q -e ".[plot,test,reference]"
	touch $@

venv: $(VENV)/.core

demo: $(VENV)/.core
	$(BIN)/minidl-digits train --split official --out runs/demo   # the recommended recipe, minidl/apps/recipes.py

spiral: $(VENV)/.core
	$(BIN)/python examples/spiral.py

test: $(VENV)/.test
	$(BIN)/python -m pytest -q

test-all: $(VENV)/.reference
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
