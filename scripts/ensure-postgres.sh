#!/usr/bin/env bash
# Makes sure the PostgreSQL the tests use answers at 127.0.0.1:5432 (user postgres, trust auth):
# nothing happens when one already does; otherwise Debian's postgresql is installed and started
# with a trust rule for the postgres user on loopback only.
set -euo pipefail

reachable() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
reachable && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v pg_ctlcluster >/dev/null; then
    echo "ensure-postgres: installing postgresql"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)
hba=/etc/postgresql/$version/main/pg_hba.conf
if ! $sudo grep -q "ferrocopr tests" "$hba"; then
    $sudo sed -i '1i host all postgres 127.0.0.1/32 trust # ferrocopr tests' "$hba"
fi
$sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null ||
    $sudo pg_ctlcluster --skip-systemctl-redirect "$version" main reload
for _ in $(seq 30); do reachable && exit 0; sleep 1; done
echo "ensure-postgres: PostgreSQL does not answer at 127.0.0.1:5432" >&2
exit 1
