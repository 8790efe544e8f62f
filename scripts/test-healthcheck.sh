#!/usr/bin/env bash
# Tests `pushbridge healthcheck`'s exit codes against a real `pushbridge serve`:
# 0 for a healthy service; 1 for a wrong status, a wrong body, a timeout and nothing listening.
#
#   scripts/test-healthcheck.sh [BINARY]    (default: the debug build, built if needed)
#
# The service runs from an empty temporary directory with environment configuration only, as in
# the container image: no config file, SQLite in the temporary directory, a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib-binary.sh
pushbridge_binary test-healthcheck "$@"

work="$(mktemp -d)"
server_pid=""
silent_pid=""
cleanup() {
    local pid
    for pid in "$server_pid" "$silent_pid"; do
        if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

passed=0
failed=0
# expect CODE NAME COMMAND...: runs COMMAND and compares its exit code with CODE.
expect() {
    local want="$1" name="$2"
    shift 2
    local got=0
    "$@" >"$work/out" 2>&1 || got=$?
    if [[ "$got" == "$want" ]]; then
        passed=$((passed + 1))
        echo "ok   $name (exit $got)"
    else
        failed=$((failed + 1))
        echo "FAIL $name: exit $got, expected $want; output:"
        sed 's/^/     /' "$work/out"
    fi
}

port="$(free_port)"
url="http://127.0.0.1:$port"

(
    cd "$work"
    exec env PUSHBRIDGE_HTTP_HOST=127.0.0.1 PUSHBRIDGE_HTTP_PORT="$port" \
        PUSHBRIDGE_STORAGE_URL="sqlite://$work/pushbridge.sqlite" \
        "$bin" serve
) >"$work/serve.log" 2>&1 &
server_pid=$!

# Wait up to 60 s for the service to answer.
for _ in $(seq 1 120); do
    if "$bin" healthcheck --quiet --url "$url/health" --timeout 1; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "test-healthcheck: pushbridge serve exited early; its log:" >&2
        cat "$work/serve.log" >&2
        exit 1
    fi
    sleep 0.5
done

expect 0 "healthy service, --url" "$bin" healthcheck --url "$url/health"
expect 0 "healthy service, port from PUSHBRIDGE_HTTP_PORT" env PUSHBRIDGE_HTTP_PORT="$port" "$bin" healthcheck
expect 1 "404 (not /health)" "$bin" healthcheck --url "$url/no-such-path"
expect 1 "200 without {\"status\":\"ok\"}" "$bin" healthcheck --url "$url/openapi.yaml"

kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=""

expect 1 "nothing listening (connection refused)" "$bin" healthcheck --url "$url/health" --timeout 2

# A socket that accepts connections (the kernel completes the handshake) but never answers.
silent_port="$(free_port)"
python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
print("listening", flush=True)
time.sleep(60)
' "$silent_port" >"$work/silent.log" 2>&1 &
silent_pid=$!
for _ in $(seq 1 50); do grep -q listening "$work/silent.log" 2>/dev/null && break; sleep 0.1; done
started=$(date +%s)
expect 1 "no answer within --timeout 1" "$bin" healthcheck --url "http://127.0.0.1:$silent_port/health" --timeout 1
elapsed=$(( $(date +%s) - started ))
if (( elapsed <= 5 )); then
    passed=$((passed + 1)); echo "ok   timeout honoured (${elapsed}s)"
else
    failed=$((failed + 1)); echo "FAIL timeout not honoured: ${elapsed}s for --timeout 1"
fi

echo "healthcheck: $passed passed, $failed failed"
[[ "$failed" == 0 ]]
