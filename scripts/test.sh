#!/usr/bin/env bash
# The project's test command: installs what the tests need on a fresh machine, then runs `swift test`.
# .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# GRDB links the system SQLite: its headers come from Debian's libsqlite3-dev.
if ! dpkg -s libsqlite3-dev >/dev/null 2>&1; then
    echo "installing libsqlite3-dev (needed by GRDB)"
    apt-get update -qq && apt-get install -y -qq libsqlite3-dev
fi

# PostgreSQL for the storage conformance suite: a throwaway server on 127.0.0.1 (installed from Debian's packages
# when missing), stopped on exit. Without it the PostgreSQL cases are skipped, and say so; in CI that is a failure.
if [ -z "${PUSHBRIDGE_TEST_POSTGRES_URL:-}" ]; then
    pg_dir=$(mktemp -d /tmp/pushbridge-test-pg.XXXXXX)
    trap 'scripts/pg-test-server.sh stop "$pg_dir"' EXIT
    if url=$(scripts/pg-test-server.sh start "$pg_dir"); then
        export PUSHBRIDGE_TEST_POSTGRES_URL="$url"
        echo "PostgreSQL for the storage tests: $url"
    elif [ "${CI:-}" = "true" ]; then
        echo "FAIL: PostgreSQL could not be started, and CI never skips the PostgreSQL storage tests" >&2
        exit 1
    else
        echo "WARNING: PostgreSQL could not be started: the PostgreSQL storage tests will be skipped" >&2
    fi
fi

# The module rules (no build needed): the pure core does no I/O, imports match Package.swift, files stay small.
python3 scripts/check-architecture.py

swift test "$@"

# The retention acceptance with `unregisterAfter: 2s`, alone: the full run above leaves it out (it says why), since a
# machine running every suite at once held one request for seconds in CI (a device then rightly expires).
# The same for the lease heartbeat's test (a 2 s lease, which a loaded machine can starve).
if [ $# -eq 0 ]; then
    PUSHBRIDGE_TEST_RETENTION_SECONDS=2 swift test --skip-build --filter RetentionTests
    PUSHBRIDGE_TEST_LEASES_ALONE=1 swift test --skip-build --filter LeaseTests
fi
