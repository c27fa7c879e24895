#!/usr/bin/env bash
# The one command that sets up and runs ferrocopr's tests: unit, integration and end to end
# (real rpmbuild, createrepo_c as a reference, dnf with its copr plugin, SQLite and PostgreSQL).
# PostgreSQL is used at 127.0.0.1:5432 as user postgres (trust auth); ensure-postgres.sh sets one
# up when none answers there. The tests that need it fail, never skip, without it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/ensure-postgres.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --locked -p ferrocopr --bin ferrocopr
cargo test --workspace --locked -- --test-threads 2
