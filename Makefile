# driftline: the two set-up commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv deps kafka-jars demo test unit integration lint bench clean

$(STAMP): pyproject.toml sidecar/pyproject.toml
	bash scripts/bootstrap-venv
	touch $(STAMP)

venv: $(STAMP)

kafka-jars:
	bash scripts/kafka-local fetch

deps: venv kafka-jars

demo: deps
	$(VENV)/bin/driftline demo --config examples/driftline.yaml

lint: venv
	$(VENV)/bin/ruff check collector detectors alerts sidecar tests bench examples deploy
	$(VENV)/bin/mypy

test: deps
	bash scripts/test-services install
	$(MAKE) lint
	$(PY) -m pytest

unit: venv
	$(PY) -m pytest tests/unit collector detectors alerts sidecar -m "not integration"

integration: deps
	$(PY) -m pytest tests/integration

bench: venv
	$(PY) bench/sidecar.py
	$(PY) bench/asgi_middleware.py
	$(PY) bench/drift.py
	$(PY) bench/run.py
	$(PY) bench/service.py
	$(PY) bench/proxy.py
	$(PY) bench/sources.py

clean:
	bash scripts/kafka-local stop || true
	rm -rf .driftline
