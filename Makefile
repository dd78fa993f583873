# Two commands matter: `make run` (the whole development stack) and `make test`
# (the suite on a throwaway PostgreSQL, the vendor-dependent tests on SQLite, and
# a fast slice on the newest Django and Python). Both install first.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.11 for the virtualenv; plain python3 where 3.11 has another name.
BOOTSTRAP_PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
PYTHON := $(VENV)/bin/python
# Reinstall only when the dependencies change: `make test` stays quick.
INSTALL_STAMP := $(VENV)/.install-stamp

NOX := $(VENV)/bin/nox
NOX_NEWEST := $(NOX) --no-error-on-missing-interpreters -s newest

.PHONY: help install test test-newest lint typecheck format schema run bench-send bench-status bench-status-10k bench-throttles bench-pacing bench-heal bench-reconcile bench-guardrails bench-metrics bench-idle-flood bench-api manage vendor mutants

help:
	@echo "make run      install, migrate, create the dev superuser, start the stack (Ctrl-C stops it)"
	@echo "make test     install, then the suite on a throwaway PostgreSQL (every core), the"
	@echo "              db_vendor tests on SQLite, and the fast slice on the newest Django/Python"
	@echo "make lint     ruff check + ruff format --check + the import contracts + mypy"
	@echo "make format   ruff format + ruff check --fix"
	@echo "make schema   export the GraphQL schema to schema.graphql"
	@echo "make bench-send / bench-status / bench-status-10k / bench-throttles / bench-pacing / bench-heal / bench-reconcile / bench-guardrails / bench-metrics / bench-idle-flood / bench-api   print the benchmark figures"
	@echo "make manage cmd=\"send_sms_batch\"   a manage.py command with make run's environment"
	@echo "make install  create $(VENV) and install the project with its [dev] extra"
	@echo "make vendor   re-download the pinned GraphiQL/React/graphql-ws files from npm (then commit)"
	@echo "make mutants  mutation testing of the sending and webhook code (slow; not in CI)"

install: $(INSTALL_STAMP)

$(INSTALL_STAMP): pyproject.toml constraints.txt
	@test -x $(PYTHON) || $(BOOTSTRAP_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

# The import contracts and the newest-Django slice run beside the PostgreSQL pass
# (tests/run.py says what overlaps and why that is honest); their output follows it.
test: install
	$(PYTHON) -m tests.run --alongside $(VENV)/bin/lint-imports --alongside "$(NOX_NEWEST)"

# The fast slice (noxfile.py) on the newest Django with the newest Python this
# machine has; skipped with a message where that Python is missing.
test-newest: install
	$(NOX_NEWEST)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(MAKE) --no-print-directory typecheck

# mypy with django-stubs on notification/ (pyproject.toml [tool.mypy]).
typecheck: install
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

schema: install
	DJANGO_DEBUG=1 $(PYTHON) manage.py export_schema schema.schema:schema --path schema.graphql

# honcho exits 130 after a Ctrl-C that stopped everything cleanly: not an error.
run: install
	$(PYTHON) -m devstack.run || test $$? -eq 130

# Send-job benchmark beside django-spire 1.3's own job: throwaway PostgreSQL + Redis + emulator process (~10 min on a busy machine; the first run installs django-spire into .bench/ from PyPI).
bench-send: install
	$(PYTHON) bench/send.py

# Live-status benchmark: callback-to-subscriber latency, webhook requests/s, each beside
# its floor (~1 min). bench-status-10k: 1,000 and 10,000 subscribers on SQLite and on
# PostgreSQL (connect storms of a few minutes each: ~15 min on a quiet 2-core machine).
bench-status: install
	$(PYTHON) bench/status.py

bench-status-10k: install
	$(PYTHON) bench/status.py --subscribers 1000 10000 --rounds 3
	$(PYTHON) bench/status.py --subscribers 1000 10000 --rounds 3 --database postgres --connect 25

# Pacing benchmark: scaled-time campaign at the carrier's rate, HIGH on top, with
# Twilio's status callbacks off and then on (~4 min).
bench-pacing: install
	$(PYTHON) bench/pacing.py
	$(PYTHON) bench/pacing.py --callbacks on

# API latency: single create and list-100 over HTTP beside a plain-Django floor (~1 min).
bench-api: install
	$(PYTHON) bench/api.py

# Self-healing benchmark: stall after Redis restarts, a cut DB connection, a Twilio outage (~3 min).
bench-heal: install
	$(PYTHON) bench/heal.py

# Reconciliation benchmark: a pass's fetches and lists against the emulator, beside bare SDK calls (~4 min).
bench-reconcile: install
	$(PYTHON) bench/reconcile.py

# Scrape cost: /metrics at 100,000 message rows, beside the floor of one count (~2 min).
bench-metrics: install
	$(PYTHON) bench/metrics_scrape.py

# The browser files GraphiQL and the demo load (committed; only needed to upgrade them).
vendor: install
	$(PYTHON) -m devstack.refresh_vendor

# Throttles: a legitimate user's latency alone and while abusers are limited (~1 min).
bench-throttles: install
	$(PYTHON) bench/throttles.py

# Guardrails: queries and ms per send batch with each guardrail off and on (~1 min).
bench-guardrails: install
	$(PYTHON) bench/guardrails.py

# Idle-connection flood: a legitimate client while 4,000 idle sockets are held (~2 min).
bench-idle-flood: install
	$(PYTHON) bench/idle_flood.py

# A manage.py command with the environment `make run` gives its processes
# (emulator credentials, DEBUG), e.g. make manage cmd="send_sms_batch".
manage: install
	$(PYTHON) -m devstack.run manage $(cmd)

# Mutation testing (on demand, never in CI; see the README's "Testing" section).
# What is mutated and which tests must kill each mutant are set here and nowhere
# else: when modules move, update these two lines. Fast, targeted tests first:
# the runner stops at the first failure. mutmut edits the files in place (and
# restores them), so run it on a clean checkout; `.venv/bin/mutmut results`
# lists the survivors afterwards and `.venv/bin/mutmut show ID` shows one.
# A bounded run: make mutants MUTATE_PATHS=notification/send/claim.py
MUTATE_PATHS ?= notification/send/,notification/status/,notification/delivery.py,notification/backends/twilio.py,notification/backends/twilio_payloads.py
MUTATE_TESTS ?= tests/send/test_sending_backoff.py tests/send/test_sending_claims.py \
	tests/send/test_sending_dispatch.py tests/send/test_sending_batch.py tests/send/test_sending_faults.py \
	tests/send/test_sending_recovery.py tests/send/test_sending_resend.py tests/status/test_status_publishes.py \
	tests/send/test_send_command.py tests/status/test_webhooks_status.py tests/status/test_webhooks_inbound.py \
	tests/status/test_webhooks_publish.py tests/status/test_webhooks_retry.py tests/status/test_webhooks_asgi.py \
	tests/send/test_sending_jobs.py tests/send/test_sending_workers.py
MUTMUT := $(VENV)/bin/mutmut

$(MUTMUT): $(INSTALL_STAMP)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check 'mutmut>=2.5,<3'

mutants: $(MUTMUT)
	$(MUTMUT) run --paths-to-mutate '$(MUTATE_PATHS)' --tests-dir tests/ --no-progress \
		--runner '$(PYTHON) -m tests.run --database sqlite -x -q -p no:cacheprovider $(MUTATE_TESTS)'; \
	status=$$?; $(MUTMUT) results; test $$((status & 1)) -eq 0  # 1: mutmut itself failed
