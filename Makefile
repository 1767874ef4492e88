# The two commands of the README:
#   make demo   set up .venv and partition the bundled AG News fixture
#   make test   set up .venv (with test extras) and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test setup setup-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

setup: $(BIN)/python
	$(BIN)/python -m pip install -q -e .

setup-dev: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,train,augment,hf,flower,ray]'
	$(BIN)/python -m pip install -q --no-deps -r requirements/augment.txt

demo: setup
	$(BIN)/fedpart partition fixtures/ag_news/sample.csv --column-names label,title,description \
		--label-col label --scheme dirichlet --alpha 0.1 --clients 10 --min-client-size 10 \
		--seed 0 --out parts/agnews-fixture-a0.1 --overwrite
	$(BIN)/fedpart stats parts/agnews-fixture-a0.1

test: setup-dev
	$(BIN)/python -m pytest
