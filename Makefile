# Set-up is two commands: `make demo` and `make test`. Each creates .venv with the pinned
# dependencies on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# anvil, the local Ethereum node of the chain tests, pinned in package.json and its lockfile
ANVIL := node_modules/.installed

.PHONY: demo test lint typecheck contracts unit bench clean

$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(INSTALLED)

$(ANVIL): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $(ANVIL)

demo: $(INSTALLED)
	$(BIN)/index-solver simulate examples/scenarios/demo.toml
	$(BIN)/index-solver demo examples/scenarios/demo.toml

test: lint typecheck contracts unit

lint: $(INSTALLED)
	$(BIN)/ruff check .

typecheck: $(INSTALLED)
	$(BIN)/mypy --strict solver fix_gateway chain

contracts: $(INSTALLED)
	$(BIN)/lint-imports

unit: $(INSTALLED) $(ANVIL)
	$(BIN)/pytest

bench: $(INSTALLED) $(ANVIL)
	$(BIN)/python benchmarks/plan_batch.py
	$(BIN)/python benchmarks/allocate.py
	$(BIN)/python benchmarks/simulate.py
	$(BIN)/python benchmarks/journal.py
	$(BIN)/python benchmarks/exchange.py
	$(BIN)/python benchmarks/fix_gateway.py
	$(BIN)/python benchmarks/latency.py
	$(BIN)/python benchmarks/sustained.py
	$(BIN)/python benchmarks/chain.py
	$(BIN)/python benchmarks/chain.py --backend anvil
	$(BIN)/python benchmarks/withdrawal.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
