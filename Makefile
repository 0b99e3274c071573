# FacePass's checks, one command each. Every target runs scripts/check.sh, which holds
# the commands themselves (scripts/test.sh, and so CI, runs the same script).
# First time on a machine: `bash scripts/test.sh` (installs the tools, starts
# PostgreSQL and RabbitMQ, makes the fixture models), or at least
# `bash scripts/lib/deps.sh` for the static checks.

CHECK := bash scripts/check.sh

.PHONY: check lint fmt clippy deny deps proto test fuzz help

## check: the checks and the tests, in order (fmt deny deps proto clippy test)
check:
	$(CHECK) all

## lint: the static checks only (fmt deny deps proto clippy)
lint:
	$(CHECK) lint

## fmt: cargo fmt --all --check
fmt:
	$(CHECK) fmt

## clippy: cargo clippy --workspace --all-targets -- -D warnings
clippy:
	$(CHECK) clippy

## deny: cargo deny --offline check licenses bans sources, and advisories when the RustSec database is at hand (deny.toml)
deny:
	$(CHECK) deny

## deps: the crate dependency map of ARCHITECTURE.md, and no unused dependency (tools/check_deps.py)
deps:
	$(CHECK) deps

## proto: buf lint, and buf breaking against proto/BREAKING_BASELINE
proto:
	$(CHECK) proto

## test: build the binaries, cargo nextest run --workspace (.config/nextest.toml)
test:
	$(CHECK) test

## fuzz: coverage-guided fuzzing, 60 s per target (SECONDS=3600 for longer: make fuzz SECONDS=3600)
fuzz:
	bash scripts/fuzz.sh $(or $(SECONDS),60)

## help: this list
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)
