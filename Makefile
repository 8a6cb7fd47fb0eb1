# minigpt-tui: set up, run and test from a fresh clone.
#
#   make run     create .venv, install everything, open the dashboard on a new run
#   make train   the same run headless: minigpt train in the foreground
#   make test    create .venv, install everything with the dev tools, run the tests
#                (and list the 15 slowest at the end, to show where the time goes)
#   make lint    ruff check and format check
#   make clean   remove .venv and build leftovers (runs/ and data/cache/ are kept)
#
# TORCH picks the torch build, TORCH_INDEX the index it comes from, e.g. for
# the CPU-only wheels on Linux:
#   make run TORCH_INDEX=https://download.pytorch.org/whl/cpu

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
BIN := $(VENV)/bin

.PHONY: setup run train test lint clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

run: setup
	$(BIN)/minigpt-tui

train: setup
	$(BIN)/minigpt train

test: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=15

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
