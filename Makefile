# Helpdesk: the commands a developer and CI need. `make test` is the one test command.
SHELL := /bin/bash
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR)

.PHONY: bootstrap run check-run test chaos bench migrate lint fmt clean web-api compose-check

bootstrap:
	@scripts/bootstrap.sh

## run: everything locally (Redis, migrations, seed, services, workers, gateway, SMTP sink); Ctrl-C stops
run: bootstrap
	$(PY) -m deploy.local.run

## check-run: boot the stack, verify every part answers, print where things are, stop
check-run: bootstrap
	$(PY) -m deploy.local.run --check

## test: the whole suite against real PostgreSQL and Redis (started here when needed)
test: bootstrap
	@scripts/ensure_test_services.sh
	$(PY) -m pytest $(PYTEST_ARGS)

## chaos: fault injection on a private PostgreSQL cluster and Redis under load (kill -9 of each worker,
## a Redis restart, a PostgreSQL fast shutdown and restart, a paused SMTP sink); prints sent / stored /
## duplicated / lost, exits 1 if anything was lost or duplicated (CHAOS_ARGS="--rate 10 --outage 10")
chaos: bootstrap
	$(PY) -m tests.chaos $(CHAOS_ARGS)

## bench: measure the running system on PostgreSQL: one table, and var/bench/<time>.json + latest.json
## (BENCH_ARGS="--quick" for a smoke pass of a few minutes, "--only intake reads" for some sections)
bench: bootstrap
	@scripts/bench_tools.sh
	@scripts/ensure_test_services.sh
	$(PY) -m bench $(BENCH_ARGS)

## compose-check: run deploy/compose.yaml for real: a Docker daemon (started when none answers),
## images built from Debian packages, S1 through the containers, APIs x2 and workers x3, a worker
## killed mid-load, every ticket acknowledged once, torn down (COMPOSE_CHECK_ARGS="--keep")
compose-check: bootstrap
	$(PY) scripts/compose_check.py $(COMPOSE_CHECK_ARGS)

## web-api: write web/src/api/<service>.ts from each service's OpenAPI (make test fails on drift)
web-api: bootstrap
	$(PY) -m deploy.local.web api

## migrate: apply every service's migrations (HELPDESK_* / <SERVICE>_DATABASE_URL decide where)
migrate: bootstrap
	$(PY) -m shared.migrate

## lint: ruff, then mypy — strict on shared/, deploy/, bench/ and the pure domain modules (pyproject.toml)
STRICT_MODULES := shared deploy bench services/ticket_api/tickets/transitions.py services/ticket_api/scheduling/availability.py \
	services/ticket_api/inbound/parsing.py services/ticket_api/inbound/loops.py services/ticket_api/inbound/quotes.py \
	services/ticket_api/inbound/reply_matching.py services/ticket_api/inbound/attachments.py \
	services/triage/business_hours.py services/triage/priority_matrix.py services/triage/sla.py \
	services/triage/assignment.py services/billing/money.py services/billing/rounding.py services/billing/periods.py services/billing/recipients.py \
	services/notifier/calendar_invites.py services/notifier/acknowledgment.py
lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/mypy $(STRICT_MODULES)

fmt: bootstrap
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

## clean: remove local state (databases, mail, logs) and caches; keeps .venv
clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
