#!/usr/bin/env bash
# The one command that sets up and runs ferrocopr on the embedded default (SQLite and local
# builders in ./ferrocopr-data, HTTP on 127.0.0.1:8080). Options go to `ferrocopr serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked -p ferrocopr --bin ferrocopr
exec target/release/ferrocopr serve "$@"
