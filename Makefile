# tariffmon developer tasks. `make test` is what CI runs (.ci/run); every target is idempotent.
#
#   make setup   virtual environment in .venv (package + test tools) and the Kafka jars
#   make lint    ruff, mypy and the import layers (lint-imports, pyproject.toml)
#   make test    setup, lint, then the whole pytest suite (starts its own Kafka broker)
#   make demo    setup, then `tariffmon demo`

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# extra pytest arguments, e.g. `make test PYTEST_ARGS="-k broker -x"`
PYTEST_ARGS ?=

# stamps: redo a step only when what it depends on changed
VENV_STAMP := $(VENV)/.tariffmon-installed
JARS_STAMP := .cache/kafka/.fetched

.PHONY: setup venv jars lint test demo clean-broker help

help:
	@sed -n 's/^#   //p' Makefile

setup: venv jars

venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	@touch $@

jars: $(JARS_STAMP)

# the Python side decides whether Maven must run (missing jars or a changed pom)
$(JARS_STAMP): tariffmon/defaults/kafka/pom.xml $(VENV_STAMP)
	$(BIN)/tariffmon kafka setup
	@mkdir -p $(@D) && touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/pytest $(PYTEST_ARGS)

demo: setup
	$(BIN)/tariffmon demo

# stop the development broker (its data stays in var/kafka; delete that folder to wipe it)
clean-broker: venv
	$(BIN)/tariffmon kafka stop
