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

.PHONY: demo spiral test test-all docs venv clean bench

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

$(VENV)/.docs: $(VENV)/.test
	$(BIN)/python -m pip install -q -e ".[plot,test,docs]"
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

# The site, into build/site: the tutorial (docs/book.py runs every block and draws its figures; set
# MINIDL_TUTORIAL_QUICK=1 for the test suite's short trainings), the architecture page and the API
# reference from the docstrings. Strict: any warning fails. Not needed by demo or test.
docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis build/site build/book
