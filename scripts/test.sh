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

swift test "$@"
