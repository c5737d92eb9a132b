# Two commands on a fresh machine (Python 3.11, nothing else running):
#   make demo   set up, start embedded services, send generated traffic end to end, print marts
#   make test   set up and run every test: ruff, pytest (which runs dbt build and sqlfluff too)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: setup demo test lint stop clean

setup: $(INSTALLED)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

demo: setup
	$(BIN)/wa-analytics demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest

stop: setup
	$(BIN)/wa-analytics stop

clean: stop
	rm -rf .wa-data target logs
