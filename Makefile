# The two commands: `make run` and `make test`. Both create .venv with the machine's python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-reliability lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files record which install the venv has, so each target installs once.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/eventwatch --config config/eventwatch.toml run

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m "not reliability"

# The long fault scenarios (kills, load, downtime) against the real daemon; CI runs them too.
test-reliability: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m reliability

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy --strict src

clean:
	rm -rf $(VENV) state .pytest_cache .mypy_cache .ruff_cache

# Benchmarks, not tests: CI does not run them. The HTTP one needs wrk (Debian: apt-get install
# wrk); the reminder one also uses Postfix's smtp-sink and smtp-source when installed.
$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $@

bench: $(VENV)/.installed-bench
	command -v wrk >/dev/null || apt-get install -y wrk >/dev/null || echo "wrk not installed: HTTP benchmark will stop"
	$(BIN)/python bench/render.py
	$(BIN)/python bench/whole_path.py
	$(BIN)/python bench/large.py
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/reminders.py
	$(BIN)/python bench/pending.py
	$(BIN)/python bench/instances.py
