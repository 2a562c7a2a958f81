# Two entry points on a fresh machine: `make run` and `make test`.
VENV    := .venv
PYTHON  := $(VENV)/bin/python
PIP     := $(PYTHON) -m pip
HOST    ?= 127.0.0.1
PORT    ?= 7860
PASSAGES ?= 100000

.PHONY: run test index bench clean

$(PYTHON):
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch first, pinned: it is the one package whose wrong build costs gigabytes.
$(VENV)/.installed-run: pyproject.toml | $(PYTHON)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PYTHON)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

$(VENV)/.installed-bench: pyproject.toml | $(PYTHON)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[bench]'
	touch $@ $(VENV)/.installed-run

index: $(VENV)/.installed-run
	$(VENV)/bin/qa index --corpus corpus --index index

run: index
	$(PYTHON) app.py --host $(HOST) --port $(PORT) --index index --corpus corpus

test: $(VENV)/.installed-test
	$(PYTHON) -m pytest

# Performance at scale against the peer pipeline (docs/benchmarks.md); needs ../shared/bench.
bench: $(VENV)/.installed-bench
	$(PYTHON) bench/run.py --passages $(PASSAGES)

clean:
	rm -rf $(VENV) index/segments index/commits index/CURRENT index/passages.sqlite* index/.lock
