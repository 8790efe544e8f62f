#!/usr/bin/env bash
# Live fuzzing from the OpenAPI document.
#
# Starts the ME sandbox and two bridges on loopback (the real binary, SQLite on temp files):
#   open   one app without keys (no auth)
#   keyed  the same app with apiKeys plus a second app with another key (requests carry the first app's key,
#          so the second app's routes must answer 403)
# and runs schemathesis against each, with the document the bridge itself serves at /openapi.yaml: every
# operation, the coverage and fuzzing phases, the checks below. App codes, device ids, providers and tokens
# are drawn partly from small dictionaries so that generated requests reach the workflow (not only 404/422).
# Fails when a check fails, when a bridge dies, or when fewer than FUZZ_MIN_REQUESTS requests were made.
#
# Usage: scripts/fuzz-api.sh [--binary PATH]
# Environment: FUZZ_SEED (20261129), FUZZ_MAX_EXAMPLES per operation and phase (60), FUZZ_MIN_REQUESTS (1000),
#              FUZZ_CHECKS (the four below; "all" adds the stricter ones), FUZZ_KEEP=1 keeps the temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

ST_VERSION=4.32.5
BIN=.build/debug/pushbridge
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) BIN=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
SEED=${FUZZ_SEED:-20261129}
MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-60}
MIN_REQUESTS=${FUZZ_MIN_REQUESTS:-1000}
CHECKS=${FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance}
APP=EMS12-34567
OTHER_APP=EMS98-76543
KEY=fuzz-key-0123456789abcdef
OTHER_KEY=other-key-0123456789abcdef

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

[ -x "$BIN" ] || { echo "no executable at $BIN (build with: swift build --product pushbridge)" >&2; exit 2; }

# schemathesis, pinned
if ! python3 -c "import schemathesis, sys; sys.exit(schemathesis.__version__ != '$ST_VERSION')" 2>/dev/null; then
    log "installing schemathesis==$ST_VERSION"
    python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi
ST="$(dirname "$(python3 -c 'import sys; print(sys.executable)')")/st"
[ -x "$ST" ] || ST=$(command -v st)

WORK=$(mktemp -d /tmp/pb-fuzz-XXXXXX)
cp "$BIN" "$WORK/pushbridge"   # a private copy: a concurrent rebuild must not replace it under us
PIDS=()
RESULT=1
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "$RESULT" = 0 ] && [ -z "${FUZZ_KEEP:-}" ]; then rm -rf "$WORK"; else echo "logs and reports kept in $WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ok() {  # url pid
    for _ in $(seq 1 300); do
        kill -0 "$2" 2>/dev/null || return 1
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

SB_PORT=$(free_port)
"$WORK/pushbridge" sandbox --port "$SB_PORT" --host 127.0.0.1 >"$WORK/sandbox.log" 2>&1 &
PIDS+=($!)
wait_ok "http://127.0.0.1:$SB_PORT/_sandbox/requests?limit=1" "${PIDS[-1]}" || { echo "sandbox did not start" >&2; exit 1; }

declare -A PORT PID
start_bridge() {  # name apps-yaml
    local name=$1 port
    port=$(free_port)
    cat >"$WORK/$name.yaml" <<EOF
http: { host: 127.0.0.1, port: $port }
storage: { url: "sqlite://$WORK/$name.sqlite" }
emarsys:
  sandbox: false
  clientServiceURL: http://127.0.0.1:$SB_PORT
  eventServiceURL: http://127.0.0.1:$SB_PORT
  requestTimeoutSeconds: 5
  maxConcurrentRequests: 32
  retry: { initialDelayMs: 50, maxDelayMs: 1000 }
providers: { directory: "" }
apps:
$2
EOF
    "$WORK/pushbridge" serve --config "$WORK/$name.yaml" >"$WORK/$name.log" 2>&1 &
    PID[$name]=$!
    PIDS+=($!)
    PORT[$name]=$port
    wait_ok "http://127.0.0.1:$port/health" "${PID[$name]}" || { echo "bridge '$name' did not start; see $WORK/$name.log" >&2; exit 1; }
}
start_bridge open "  - code: $APP"
start_bridge keyed "  - code: $APP
    apiKeys: [\"$KEY\"]
  - code: $OTHER_APP
    apiKeys: [\"$OTHER_KEY\"]"
log "sandbox :$SB_PORT, bridges open :${PORT[open]}, keyed :${PORT[keyed]}; workdir $WORK"
# The fuzzing follows the document the binary serves; say so when it is not the repository's openapi.yaml.
# (The binary serves the file without its final newline, as the Swift literal holds it.)
if ! { curl -fsS "http://127.0.0.1:${PORT[open]}/openapi.yaml"; echo; } | cmp -s - "$REPO/openapi.yaml"; then
    log "WARNING: the served /openapi.yaml differs from openapi.yaml (stale binary, or gen-openapi-swift.sh not run)"
fi

# Devices the dictionaries name exist from the start, so reads, logins and removals reach real devices.
seed_devices() {  # base auth-header
    local i
    for i in 1 2 3; do
        curl -fsS -o /dev/null -X PUT "$1/v1/apps/$APP/devices/fz-$i" -H "$2" -H 'Content-Type: application/json' \
            -d "{\"provider\":\"fcm\",\"token\":\"seed$i:APA91bSeedToken0123456789abcdefghij\"}"
    done
}
seed_devices "http://127.0.0.1:${PORT[open]}" "X-Nothing: 1"
seed_devices "http://127.0.0.1:${PORT[keyed]}" "Authorization: Bearer $KEY"

write_st_config() {  # file app-codes
    cat >"$1" <<EOF
[dictionaries.appcodes]
values = [$2]
[dictionaries.devices]
values = ["fz-1", "fz-2", "fz-3", "fz-new"]
[dictionaries.providers]
values = ["fcm", "hms", "apns"]
[dictionaries.tokens]
values = ["fz1:APA91bQ2xk9Zt0wWbJcYv_8mN-3pLsRr", "fz2:APA91bH7yUo0eKq1aXfDz-5gT_9cMvNn", "fz3:APA91bLmP2sQ4tR6vW8xY0zA-B_C1dE3", "6b596ab0b60568ef8a3b9baa0617dcd84e7f163138789841ebfcd9d029de6055"]

[parameters]
"path.code" = { dictionary = "appcodes", probability = 0.85 }
"path.deviceId" = { dictionary = "devices", probability = 0.5 }
"body.provider" = { dictionary = "providers", probability = 0.7 }
"body.token" = { dictionary = "tokens", probability = 0.6 }
EOF
}

TOTAL=0
FAILED=()
run_variant() {  # name app-codes [header]
    local name=$1 base="http://127.0.0.1:${PORT[$1]}" rc=0 n
    local dir="$WORK/st-$name"
    mkdir -p "$dir"
    write_st_config "$dir/schemathesis.toml" "$2"
    local args=(run "$base/openapi.yaml" --url "$base" --checks "$CHECKS" --phases examples,coverage,fuzzing
                --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers 1 --generation-database none
                --request-timeout 20 --no-color --report ndjson,junit --report-dir "$dir/report")
    [ $# -ge 3 ] && args+=(--header "$3")
    log "schemathesis ($name): checks $CHECKS, up to $MAX_EXAMPLES examples per operation and phase"
    (cd "$dir" && "$ST" --config-file "$dir/schemathesis.toml" "${args[@]}") >"$dir/output.txt" 2>&1 || rc=$?
    # Requests actually sent, from the NDJSON event stream (one interaction per request).
    n=$(python3 - "$dir/report" <<'EOF'
import glob, json, sys
n = 0
for path in glob.glob(sys.argv[1] + "/*.ndjson"):
    for line in open(path):
        event = json.loads(line)
        n += len(((event.get("ScenarioFinished") or {}).get("recorder") or {}).get("interactions") or {})
print(n)
EOF
)
    TOTAL=$((TOTAL + n))
    sed -n '/^=* SUMMARY/,$p' "$dir/output.txt" | sed 's/^/    /'
    if [ "$rc" != 0 ]; then
        sed -n '/^=* \(FAILURES\|ERRORS\)/,/^=* \(WARNINGS\|SUMMARY\)/p' "$dir/output.txt" | cut -c1-400 | head -120
        FAILED+=("$name: schemathesis exit $rc")
    fi
    kill -0 "${PID[$name]}" 2>/dev/null || FAILED+=("$name: the bridge process died (see $WORK/$name.log)")
    log "schemathesis ($name): $n requests, exit $rc"
}

T0=$(date +%s)
run_variant open "\"$APP\""
run_variant keyed "\"$APP\", \"$OTHER_APP\"" "Authorization: Bearer $KEY"
ELAPSED=$(( $(date +%s) - T0 ))

[ "$TOTAL" -ge "$MIN_REQUESTS" ] || FAILED+=("only $TOTAL requests generated (want >= $MIN_REQUESTS)")
echo
echo "fuzz-api: $TOTAL requests in ${ELAPSED}s against 2 bridges (checks: $CHECKS; seed $SEED)"
if [ ${#FAILED[@]} -eq 0 ]; then
    RESULT=0
    echo "fuzz-api: PASS"
else
    printf 'fuzz-api: FAIL: %s\n' "${FAILED[@]}"
    exit 1
fi
