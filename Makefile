# Two commands matter: `make run` (the whole development stack) and `make test`
# (the suite on SQLite, then on a throwaway PostgreSQL). Both install first.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.11 for the virtualenv; plain python3 where 3.11 has another name.
BOOTSTRAP_PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
PYTHON := $(VENV)/bin/python
# Reinstall only when the dependencies change: `make test` stays quick.
INSTALL_STAMP := $(VENV)/.install-stamp

.PHONY: help install test lint format schema run bench-send bench-status bench-pacing manage

help:
	@echo "make run      install, migrate, create the dev superuser, start the stack (Ctrl-C stops it)"
	@echo "make test     install, then run the tests on SQLite and on a throwaway PostgreSQL"
	@echo "make lint     ruff check + ruff format --check + the import contracts (lint-imports)"
	@echo "make format   ruff format + ruff check --fix"
	@echo "make schema   export the GraphQL schema to schema.graphql"
	@echo "make bench-send / make bench-status / make bench-pacing   print the benchmark figures"
	@echo "make manage cmd=\"send_sms_batch\"   a manage.py command with make run's environment"
	@echo "make install  create $(VENV) and install the project with its [dev] extra"

install: $(INSTALL_STAMP)

$(INSTALL_STAMP): pyproject.toml constraints.txt
	@test -x $(PYTHON) || $(BOOTSTRAP_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

test: install
	$(VENV)/bin/lint-imports
	$(PYTHON) -m tests.run

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

schema: install
	DJANGO_DEBUG=1 $(PYTHON) manage.py export_schema schema.schema:schema --path schema.graphql

# honcho exits 130 after a Ctrl-C that stopped everything cleanly: not an error.
run: install
	$(PYTHON) -m devstack.run || test $$? -eq 130

# Send-job benchmark: throwaway PostgreSQL + Redis + emulator process (~1 min).
bench-send: install
	$(PYTHON) bench/send.py

# Live-status benchmark: callback-to-subscriber latency, webhook requests/s (~1 min).
bench-status: install
	$(PYTHON) bench/status.py

# Pacing benchmark: scaled-time campaign at the carrier's rate, HIGH on top (~2 min).
bench-pacing: install
	$(PYTHON) bench/pacing.py

# A manage.py command with the environment `make run` gives its processes
# (emulator credentials, DEBUG), e.g. make manage cmd="send_sms_batch".
manage: install
	$(PYTHON) -m devstack.run manage $(cmd)
