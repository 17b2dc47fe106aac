# Every target makes its own virtual environment (.venv) from pyproject.toml.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
SEED := issues/2026-11-26-stem-cells-in-breast-milk.md

.PHONY: demo test test-fast lint format bench bench-store bench-send bench-web bench-site golden clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The main job on the embedded defaults (SQLite file, local outbox). Safe to re-run:
# the import changes nothing the second time, and the send resumes its campaign,
# which has no one left to send to.
demo: $(BIN)/.installed
	$(BIN)/newsletter check $(SEED)
	$(BIN)/newsletter subscribers import subscribers.example.csv
	$(BIN)/newsletter send $(SEED) --yes
	@echo "The issue is in outbox/new/ (one file per message; mutt -f outbox)."

# pytest-xdist workers: one per core by default; make test WORKERS=0 runs in this process.
WORKERS ?= auto

# The whole check (lint, formatting, strict types, dead code: vulture with
# vulture_whitelist.py), then the suite on every core. CI runs
# exactly this (see .ci/run).
test: $(BIN)/.installed
	$(BIN)/ruff check newsletter tests benchmarks scripts
	$(BIN)/ruff format --check newsletter tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/vulture
	$(BIN)/python -m pytest -n $(WORKERS)

# The inner loop: the suite without the tests marked slow (subprocesses, browsers, big
# batches), on every core. One file: .venv/bin/python -m pytest tests/send/test_ledger.py
test-fast: $(BIN)/.installed
	$(BIN)/python -m pytest -n $(WORKERS) -m "not slow"

lint: $(BIN)/.installed
	$(BIN)/ruff check newsletter tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/vulture
	$(BIN)/ruff format --check newsletter tests benchmarks scripts

# Refresh the golden files after an intended change to the rendered seed issue.
golden: $(BIN)/.installed
	NEWSLETTER_UPDATE_GOLDEN=1 $(BIN)/python -m pytest tests/render/test_golden.py

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_render.py

# Import speed and memory of the subscriber store (several minutes; --quick for a smoke test).
bench-store: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_store.py

# Sending throughput, memory at a million subscribers, SMTP reuse (about ten minutes).
bench-send: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_send.py

bench-web: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_web.py

bench-site: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_site.py

clean:
	rm -rf $(VENV) build outbox newsletter.db .pytest_cache
