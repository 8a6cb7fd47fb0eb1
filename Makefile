# minigpt-tui: set up, run and test from a fresh clone.
#
#   make run     create .venv, install everything, open the dashboard on a new run
#                (everything includes transformers, for `x` and `minigpt export --hf`)
#   make train   the same run headless: minigpt train in the foreground
#   make test    create .venv, install everything with the dev tools and the [export]
#                extra (tensorboard: `minigpt export --tensorboard`), run the tests
#                (and list the 15 slowest at the end, to show where the time goes)
#   make test-numerics
#                the tests marked `trains` again under each other float arithmetic:
#                torch's CPU kernels (ATEN_CPU_CAPABILITY=default, =avx2, and unset, the
#                machine's best) times 1 and 2 torch threads (MINIGPT_TEST_THREADS),
#                less best/1, which `make test` runs. Runs every cell, then fails if
#                any failed; one cell: make test-numerics CELLS=avx2/2. Measured: 10 min
#                wall, 8 min user CPU, for 5 cells of 127 tests on a shared 2-core
#                machine; budget 20 min (.ci/run)
#   make lint    ruff check and format check, mypy --strict on minigpt/ and tui/, and the
#                import contracts between the layers (lint-imports, [tool.importlinter]
#                in pyproject.toml: a wrong import fails with the rule's name)
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

# kernels/threads; "best" leaves ATEN_CPU_CAPABILITY unset.
CELLS ?= default/1 avx2/1 default/2 avx2/2 best/2

.PHONY: setup run train test test-numerics lint clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

INSTALL_TORCH = $(BIN)/pip install --quiet "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))

# torch, the project with its default dependencies and the dev tools. The defaults include
# transformers, tokenizers and safetensors, so the dashboard's `x` (minigpt export --hf)
# works after `make run`: measured on a 2-core machine, they and what they bring add 29 MB
# of downloads, 111 MiB installed and 10 s (21 s byte-compiled) to the install.
$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(INSTALL_TORCH)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# The same plus the [export] extra, tensorboard (`minigpt export --tensorboard`, which the
# tests and mypy need and `make run` does without): 27 MB more downloads, 70 MiB and 6 s.
# One pip run for both, as a second one would build the project again. --no-compile:
# Python compiles what the tests import when they import it, instead of every file of
# torch and transformers up front (measured: 53 s instead of 99 for the two installs on a
# 2-core machine).
$(VENV)/.installed-export: $(BIN)/activate pyproject.toml
	$(INSTALL_TORCH) --no-compile
	$(BIN)/pip install --quiet --no-compile -e ".[dev,export]"
	touch $@ $(VENV)/.installed

setup: $(VENV)/.installed

run: setup
	$(BIN)/minigpt-tui

train: setup
	$(BIN)/minigpt train

test: $(VENV)/.installed-export
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=15

# OMP_WAIT_POLICY=PASSIVE: with 2 torch threads on a busy machine, a thread that spins
# waiting for its descheduled partner made the tests 25 times slower; passive waiting
# changes no result. Two workers, as in `make test`: the tests wait on engines and
# terminals more than they compute, so they beat one worker even at 2 threads each.
test-numerics: $(VENV)/.installed-export
	@failed=""; \
	for cell in $(CELLS); do \
	    kernels=$${cell%/*}; threads=$${cell#*/}; \
	    if [ "$$kernels" = best ]; then run="env -u ATEN_CPU_CAPABILITY"; \
	    else run="env ATEN_CPU_CAPABILITY=$$kernels"; fi; \
	    run="$$run MINIGPT_TEST_THREADS=$$threads OMP_WAIT_POLICY=PASSIVE"; \
	    used=$$($$run $(BIN)/python -c "import torch; print(torch.backends.cpu.get_cpu_capability())"); \
	    echo "== $$cell: $$run ($$used kernels)"; \
	    $$run $(BIN)/python -m pytest -m trains -n 2 --dist loadfile -q || failed="$$failed $$cell"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-numerics: failed in$$failed"; exit 1; fi

# With the [export] extra too: mypy reads the export tests, which import its packages.
lint: $(VENV)/.installed-export
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
