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

.PHONY: demo spiral test test-all docs venv clean bench voices

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

# Optional: the speech synthesisers behind audio.synthetic's extra training voices (Debian's
# espeak-ng and flite). `make demo` and `make test` never need them.
voices:
	@if command -v espeak-ng >/dev/null 2>&1 && command -v flite >/dev/null 2>&1; then \
		echo "espeak-ng and flite are installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng flite; \
	else \
		echo "make voices: needs root; run: sudo apt-get install -y espeak-ng flite"; exit 1; \
	fi

# The site, into build/site: the tutorial (docs/book.py runs every block and draws its figures; set
# MINIDL_TUTORIAL_QUICK=1 for the test suite's short trainings), the architecture page and the API
# reference from the docstrings. Strict: any warning fails. Not needed by demo or test.
docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis build/site build/book
