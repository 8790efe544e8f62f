#!/usr/bin/env bash
# End-to-end benchmark of pushbridge: one command, one table (issue 6).
#
#   scripts/bench.sh                 # everything, ~10 minutes on 2 cores after the release build
#
# Builds the release binary (the Dockerfile's SWIFT_BUILD_FLAGS, scratch folder .build-release), installs
# wrk from Debian's packages when missing, runs the ME sandbox (`pushbridge sandbox`) and the bridge
# (`pushbridge serve`, `emarsys.sandbox: false`, calling the standalone sandbox) as separate processes on
# 127.0.0.1, each bridge run on a fresh SQLite database in a temporary folder, and measures, in this run:
#
#   health      GET /health with wrk                                     (the limit for ingest)
#   ingest      PUT .../push-token, a new device and token per request  (wrk Lua), with the sandbox holding
#               each ME answer for BENCH_INGEST_ME_LATENCY_MS (1000): the API path measured alone, as with a
#               remote ME, instead of sharing the two cores with the workflow and the sandbox
#   dedup       the same device and token again (200 deduplicated), same conditions
#   ingest_live ingest again with the sandbox answering at once, the workflow running beside it (a note)
#   me-limit    the sandbox's own PUT /v3/apps/{code}/client/push-token hit by wrk (the limit for the workflow)
#   workflow    N new devices (token-only PUTs through `pushbridge import`: 3 ME calls each) from the first
#               request to all `registered`, sandbox answering at once, then with 20 ms injected latency; also
#               the bridge's and the sandbox's CPU time per device and the ME calls' mean duration as the
#               bridge saw them (its /metrics)
#   scale       status reads of random stored devices and ingest with S_small and S_large devices seeded
#               (`pushbridge seed`), the bridge's VmRSS at the end of each
#   start-up    process start to /ready 200, on the fresh database and on the S_large one
#   scaleout    one and two bridge instances on one PostgreSQL (scripts/pg-test-server.sh with PG_DURABLE=1:
#               fsync, synchronous_commit and full_page_writes on; storage.poolSize 16), a fresh database per
#               run: ingest as above (wrk at BENCH_CONNECTIONS per instance, two wrk at once for two instances,
#               req/s summed) and the workflow with BENCH_SCALEOUT_DEVICES new devices (one import per
#               instance, the CSV split in halves for two); reported as 2 instances ÷ 1
#
# Knobs (environment): BENCH_DURATION (s per wrk run, 10), BENCH_THREADS (1), BENCH_CONNECTIONS (32),
# BENCH_WORKFLOW_DEVICES (20000), BENCH_SCALE_SMALL (10000), BENCH_SCALE_LARGE (1000000),
# BENCH_SCALEOUT_DEVICES (10000),
# BENCH_MAX_CONCURRENT (64, emarsys.maxConcurrentRequests), BENCH_LATENCY_MS (20),
# BENCH_INGEST_ME_LATENCY_MS (1000; 0 measures ingest with the workflow running at full speed), BENCH_OUT
# (bench-results.json), BENCH_SKIP_BUILD=1 (use the existing binary), BENCH_BIN (another binary, e.g. an
# older build to compare), BENCH_PHASES (all; or a subset of
# "ingest workflow scale scaleout", for profiling runs), BENCH_WEBHOOK=dead (a webhook endpoint that never
# answers), BENCH_BRIDGE_PORT (18080; the second instance of
# scaleout listens on the next port), BENCH_SANDBOX_PORT (18090), BENCH_KEEP=1 (keep the work folder: logs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

DURATION=${BENCH_DURATION:-10}
THREADS=${BENCH_THREADS:-1}
CONNS=${BENCH_CONNECTIONS:-32}
WORKFLOW_N=${BENCH_WORKFLOW_DEVICES:-20000}
SCALE_SMALL=${BENCH_SCALE_SMALL:-10000}
SCALE_LARGE=${BENCH_SCALE_LARGE:-1000000}
SCALEOUT_N=${BENCH_SCALEOUT_DEVICES:-10000}
MAXCONC=${BENCH_MAX_CONCURRENT:-64}
LATENCY_MS=${BENCH_LATENCY_MS:-20}
INGEST_ME_LATENCY_MS=${BENCH_INGEST_ME_LATENCY_MS:-1000}
OUT=${BENCH_OUT:-$ROOT/bench-results.json}
PHASES=${BENCH_PHASES:-ingest workflow scale scaleout}
APP=EMS12-34567
BRIDGE_PORT=${BENCH_BRIDGE_PORT:-18080}
BRIDGE2_PORT=$((BRIDGE_PORT + 1))   # scaleout's second instance
SANDBOX_PORT=${BENCH_SANDBOX_PORT:-18090}
CALLS_PER_DEVICE=3   # token-only PUT: client, anonymous contact link, push token (no start event)
TICKS=$(getconf CLK_TCK)   # clock ticks per second in /proc/PID/stat
PG_POOL=16           # storage.poolSize of each instance in scaleout

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- build -------------------------------------------------------------------------------------------
FLAGS=$(sed -n 's/^ARG SWIFT_BUILD_FLAGS="\(.*\)"/\1/p' Dockerfile 2>/dev/null | head -n1)
FLAGS=${FLAGS:-"-c release --product pushbridge --static-swift-stdlib"}
# shellcheck disable=SC2086  # word splitting of FLAGS is intended
if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    log "swift build $FLAGS --scratch-path .build-release"
    swift build $FLAGS --scratch-path .build-release >&2
fi
# shellcheck disable=SC2086
BIN=${BENCH_BIN:-"$(swift build $FLAGS --scratch-path .build-release --show-bin-path)/pushbridge"}
[[ -x "$BIN" ]] || { echo "no binary at $BIN" >&2; exit 1; }

# --- tools -------------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
    log "installing wrk (Debian package)"
    if [[ $(id -u) -eq 0 ]]; then apt-get update -qq >&2 && apt-get install -y -qq wrk >&2
    else sudo apt-get update -qq >&2 && sudo apt-get install -y -qq wrk >&2; fi
fi
if ! command -v curl >/dev/null || ! command -v python3 >/dev/null; then echo "curl and python3 are needed" >&2; exit 1; fi

# --- processes ---------------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pushbridge-bench.XXXXXX")
SANDBOX_PID=""
BRIDGE_PID=""    # the bridge on BRIDGE_PORT
BRIDGE2_PID=""   # scaleout's second instance, on BRIDGE2_PORT
DEAD_PID=""      # BENCH_WEBHOOK=dead's listener
cleanup() {
    if [[ -n "$DEAD_PID" ]]; then kill "$DEAD_PID" 2>/dev/null || true; fi
    for pid in $BRIDGE_PID $BRIDGE2_PID $SANDBOX_PID; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $BRIDGE_PID $BRIDGE2_PID $SANDBOX_PID; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [[ -d "$WORK/pg" ]]; then   # scaleout's PostgreSQL (its server log kept with BENCH_KEEP=1)
        if [[ "${BENCH_KEEP:-0}" == 1 && -f "$WORK/pg/pgdir" ]]; then
            cp "$(cat "$WORK/pg/pgdir")/server.log" "$WORK/postgres.log" 2>/dev/null || true
        fi
        "$ROOT/scripts/pg-test-server.sh" stop "$WORK/pg" || true
    fi
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# BENCH_WEBHOOK=dead: the app gets a webhook endpoint that accepts connections and never answers (every delivery
# waits out webhooks.timeoutSeconds, 10 s), to show that a dead receiver holds back no ME work.
WEBHOOKS=""
if [[ "${BENCH_WEBHOOK:-}" == "dead" ]]; then
    DEAD_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    python3 -c '
import socket, sys, threading, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1024)
held = []
while True:
    c, _ = s.accept(); held.append(c)   # read nothing, answer nothing
' "$DEAD_PORT" &
    DEAD_PID=$!
    WEBHOOKS=", webhooks: [{ url: \"http://127.0.0.1:$DEAD_PORT/hook\", secret: \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\" }]"
fi

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
record() { printf '%s\n' "$1" >>"$RESULTS"; }   # one JSON object per figure

# config DIR [STORAGE_URL [PORT]]: a bridge configuration in DIR, calling the standalone sandbox, listening on
# PORT (BRIDGE_PORT), with its database in DIR or, given a postgres:// STORAGE_URL, there (key PG_KEY).
config() {
    local dir=$1 url=${2:-} port=${3:-$BRIDGE_PORT} storage
    mkdir -p "$dir"
    if [[ -z "$url" ]]; then
        storage="{ url: \"sqlite://$dir/pushbridge.sqlite\" }"
    else
        storage="{ url: \"$url\", encryptionKey: \"$PG_KEY\", poolSize: $PG_POOL }"
    fi
    cat >"$dir/pushbridge.yaml" <<EOF
http: { host: 127.0.0.1, port: $port }
storage: $storage
emarsys:
  sandbox: false
  clientServiceURL: "http://127.0.0.1:$SANDBOX_PORT"
  eventServiceURL: "http://127.0.0.1:$SANDBOX_PORT"
  requestTimeoutSeconds: 10
  maxConcurrentRequests: $MAXCONC
limits: { maxQueuedIntents: 100000000, maxQueuedIntentsPerApp: 100000000 }
providers: { directory: "$ROOT/providers" }
log: { level: warning }
apps:
  - { code: $APP, contactFieldId: 3, anonymousContacts: true, startEvent: "app:start"$WEBHOOKS }
EOF
    echo "$dir/pushbridge.yaml"
}

now() { date +%s.%N; }

wait_http() {  # url timeout_s -> waits for a 200
    local url=$1 until=$(( $(date +%s) + $2 ))
    until curl -sf -o /dev/null "$url"; do
        (( $(date +%s) < until )) || { echo "timed out waiting for $url" >&2; return 1; }
        sleep 0.01
    done
}

port_free() {  # port: fails when something answers there already (a leftover server would skew every figure)
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/"; then
        echo "port $1 is in use; stop what listens there or set BENCH_BRIDGE_PORT / BENCH_SANDBOX_PORT" >&2
        return 1
    fi
}

start_sandbox() {
    port_free "$SANDBOX_PORT"
    "$BIN" sandbox --host 127.0.0.1 --port "$SANDBOX_PORT" --config "$(config "$WORK/sandbox")" >"$WORK/sandbox.log" 2>&1 &
    SANDBOX_PID=$!
    wait_http "http://127.0.0.1:$SANDBOX_PORT/_sandbox/health" 30
}

# start_bridge CFG NAME [PORT]: starts the bridge whose configuration listens on PORT (BRIDGE_PORT: pid in
# BRIDGE_PID, log bridge.log; BRIDGE2_PORT: BRIDGE2_PID, bridge2.log), records the time from exec to /ready 200
# as startup.NAME
start_bridge() {
    local cfg=$1 name=$2 port=${3:-$BRIDGE_PORT} t0 t1 pid blog="$WORK/bridge.log"
    [[ "$port" == "$BRIDGE_PORT" ]] || blog="$WORK/bridge2.log"
    port_free "$port"
    t0=$(now)
    "$BIN" serve --config "$cfg" >>"$blog" 2>&1 &
    pid=$!
    if [[ "$port" == "$BRIDGE_PORT" ]]; then BRIDGE_PID=$pid; else BRIDGE2_PID=$pid; fi
    wait_http "http://127.0.0.1:$port/ready" 60 || { tail -n 20 "$blog" >&2; return 1; }
    t1=$(now)
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$blog" >&2; return 1; }
    record "{\"figure\": \"startup.$name\", \"seconds\": $(python3 -c "print(round($t1 - $t0, 3))")}"
}

stop_bridge() {  # stops the bridge(s) running: SIGTERM, up to 10 s to exit, then SIGKILL
    local pid
    for pid in $BRIDGE_PID $BRIDGE2_PID; do kill "$pid" 2>/dev/null || true; done
    for pid in $BRIDGE_PID $BRIDGE2_PID; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    BRIDGE_PID=""
    BRIDGE2_PID=""
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # user + system time of a process, in clock ticks
per_device() { python3 -c "print(round(($2 - $1) * 1000 / $TICKS / $WORKFLOW_N, 3))"; }  # ticks before, after -> ms
# me_call_ms BASE: the mean duration of the bridge's ME calls so far, as it saw them (its /metrics histogram)
me_call_ms() {
    curl -sf "$1/metrics" | python3 -c '
import sys
total = count = 0.0
for line in sys.stdin:
    if line.startswith("pushbridge_me_call_duration_seconds_sum"): total += float(line.split()[-1])
    if line.startswith("pushbridge_me_call_duration_seconds_count"): count += float(line.split()[-1])
print(round(total / count * 1000, 2) if count else "null")'
}

# --- wrk scripts -------------------------------------------------------------------------------------
# Every script ends with done(): one JSON line with the figures (no per-response Lua, which would slow wrk).
cat >"$WORK/done.lua" <<'EOF'
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_s": %.3f, "rps": %.1f, "p50_ms": %.3f, "p99_ms": %.3f, "mean_ms": %.3f, "non2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.mean / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
EOF
cat >"$WORK/ingest.lua" <<EOF
local counter = 0

function setup(thread) counter = counter + 1; thread:set("tid", counter) end
function init(args) prefix = args[1] .. "-" .. tid .. "-"; n = 0 end
function request()
  n = n + 1
  local id = prefix .. n
  return wrk.format("PUT", "/v1/apps/$APP/devices/" .. id .. "/push-token",
    {["Content-Type"] = "application/json"},
    '{"provider": "fcm", "token": "' .. id .. ':APA91bBenchmarkTokenxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}')
end
EOF
cat "$WORK/done.lua" >>"$WORK/ingest.lua"
# One JSON body, the same request again and again: dedup's PUT, and normalize's POST (the API path with no
# storage: body, JSON, the provider plugin and the token hash, and a JSON answer) with the very same body.
DEDUP_BODY='{"provider": "fcm", "token": "dedup-1:APA91bBenchmarkTokenxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'
fixed_request_lua() {  # FILE METHOD PATH
    cat >"$1" <<EOF
wrk.method = "$2"
wrk.path = "$3"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$DEDUP_BODY'
EOF
    cat "$WORK/done.lua" >>"$1"
}
fixed_request_lua "$WORK/dedup.lua" PUT "/v1/apps/$APP/devices/dedup-1/push-token"
fixed_request_lua "$WORK/normalize.lua" POST /v1/tokens/normalize
cp "$WORK/done.lua" "$WORK/plain.lua"
cat >"$WORK/reads.lua" <<EOF
local counter = 0

function setup(thread) counter = counter + 1; thread:set("tid", counter) end
function init(args) count = tonumber(args[1]); math.randomseed(os.time() * 100 + tid) end
function request()
  return wrk.format("GET", "/v1/apps/$APP/devices/seed-" .. math.random(0, count - 1))
end
EOF
cat "$WORK/done.lua" >>"$WORK/reads.lua"

# wrk_json URL SCRIPT [ARGS...]: a bounded wrk run; prints its WRKJSON line's JSON.
wrk_json() {
    local url=$1 script=$2
    shift 2
    local out json
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 10s -s "$script" "$url" -- "$@" 2>&1) || { echo "$out" >&2; return 1; }
    json=$(grep '^WRKJSON ' <<<"$out" | sed 's/^WRKJSON //')
    [[ -n "$json" ]] || { echo "$out" >&2; return 1; }
    echo "$json"
}

# wrk_run FIGURE URL SCRIPT [ARGS...]: a bounded wrk run; records the WRKJSON line as FIGURE, with the CPU time
# the server (the sandbox for its own URL, else the bridge) spent per request.
wrk_run() {
    local figure=$1 json pid t0 t1 cpu=null
    shift
    if [[ "$1" == "$SANDBOX"* ]]; then pid=$SANDBOX_PID; else pid=${BRIDGE_PID:-}; fi
    [[ -n "$pid" && -r "/proc/$pid/stat" ]] || pid=""
    [[ -n "$pid" ]] && t0=$(cpu_ticks "$pid")
    json=$(wrk_json "$@")
    if [[ -n "$pid" && -r "/proc/$pid/stat" ]]; then
        t1=$(cpu_ticks "$pid")
        cpu=$(python3 -c "import json, sys; n = json.loads(sys.argv[1])['requests']; print(round(($t1 - $t0) * 1e6 / $TICKS / n, 1) if n else 'null')" "$json")
    fi
    log "$figure: $json, server CPU $cpu µs per request"
    record "{\"figure\": \"$figure\", \"threads\": $THREADS, \"connections\": $CONNS, \"server_cpu_us_per_request\": $cpu, \"wrk\": $json}"
}

BRIDGE="http://127.0.0.1:$BRIDGE_PORT"
BRIDGE2="http://127.0.0.1:$BRIDGE2_PORT"
SANDBOX="http://127.0.0.1:$SANDBOX_PORT"

# poll_registered BASE TARGET TIMEOUT_S: polls BASE's GET /stats until byState.registered >= TARGET; prints the
# time it did.
poll_registered() {
    python3 - "$1/v1/apps/$APP/stats" "$2" "$3" <<'EOF'
import json, sys, time, urllib.request
url, target, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.time() + timeout
last = None
while time.time() < end:
    with urllib.request.urlopen(url) as r:
        s = json.load(r)
    done = s["byState"].get("registered", 0)
    if done >= target:
        print(f"{time.time():.3f}")
        sys.exit(0)
    last = s
    time.sleep(0.05)
print(f"timeout: {json.dumps(last)}", file=sys.stderr)
sys.exit(1)
EOF
}

# wait_idle TIMEOUT_S: waits until the bridge has no queued intents (the engine caught up).
wait_idle() {
    python3 - "$BRIDGE/v1/apps/$APP/stats" "$1" <<'EOF'
import json, sys, time, urllib.request
url, timeout = sys.argv[1], float(sys.argv[2])
end = time.time() + timeout
while time.time() < end:
    with urllib.request.urlopen(url) as r:
        s = json.load(r)
    if s["queuedIntents"] == 0:
        sys.exit(0)
    time.sleep(0.2)
print(f"still queued after {timeout}s: {s['queuedIntents']}", file=sys.stderr)
EOF
}

# --- run ---------------------------------------------------------------------------------------------
log "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); work folder $WORK"
record "{\"figure\": \"machine\", \"nproc\": $(nproc), \"loadavg_start\": \"$(cut -d' ' -f1-3 /proc/loadavg)\", \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\", \"mem_kb\": $(awk '/MemTotal/ {print $2}' /proc/meminfo), \"duration_s\": $DURATION, \"threads\": $THREADS, \"connections\": $CONNS, \"max_concurrent_requests\": $MAXCONC, \"latency_ms\": $LATENCY_MS, \"me_calls_per_device\": $CALLS_PER_DEVICE, \"workflow_devices\": $WORKFLOW_N, \"scale_small\": $SCALE_SMALL, \"scale_large\": $SCALE_LARGE, \"scaleout_devices\": $SCALEOUT_N}"

start_sandbox
log "sandbox pid $SANDBOX_PID"

# The limit for the workflow: the sandbox's push-token route, a registered client with a contact token.
order() { python3 -c 'import time; print(int(time.time() * 1000))'; }
curl -sf -o /dev/null -X POST "$SANDBOX/v3/apps/$APP/client" -H 'Content-Type: application/json' \
    -H 'X-Client-Id: bench-client-1' -H "X-Request-Order: $(order)" \
    -d '{"platform": "android", "applicationVersion": "1.0.0", "deviceModel": "bench", "osVersion": "15", "sdkVersion": "3.0.0", "language": "en", "timezone": "+0000"}'
CONTACT_TOKEN=$(curl -sf -X POST "$SANDBOX/v3/apps/$APP/client/contact?anonymous=true" -H 'Content-Type: application/json' \
    -H 'X-Client-Id: bench-client-1' -H "X-Request-Order: $(order)" -d '{}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["contactToken"])')
cat >"$WORK/me.lua" <<EOF
wrk.method = "PUT"
wrk.path = "/v3/apps/$APP/client/push-token"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Client-Id"] = "bench-client-1"
wrk.headers["X-Contact-Token"] = "$CONTACT_TOKEN"
wrk.headers["X-Request-Order"] = "$(order)"
-- As the bridge: the sandbox checks its invariants on this traffic too, as it does for the workflow phases.
wrk.headers["User-Agent"] = "pushbridge/bench"
wrk.body = '{"pushToken": "bench-client-1:APA91bBenchmarkTokenxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'
EOF
cat "$WORK/done.lua" >>"$WORK/me.lua"
wrk_run me_limit "$SANDBOX" "$WORK/me.lua"

me_latency() {  # ms: every ME answer of the sandbox waits that long (0: none)
    curl -sf -o /dev/null -X DELETE "$SANDBOX/_sandbox/faults" || true
    if [[ "$1" != 0 ]]; then
        curl -sf -o /dev/null -X POST "$SANDBOX/_sandbox/faults" -H 'Content-Type: application/json' \
            -d "{\"latencyMs\": $1, \"unlimited\": true}"
    fi
}

if [[ " $PHASES " == *" ingest "* ]]; then
    CFG=$(config "$WORK/ingest")
    start_bridge "$CFG" fresh
    log "bridge pid $BRIDGE_PID (ingest, fresh database), ME answers after $INGEST_ME_LATENCY_MS ms"
    me_latency "$INGEST_ME_LATENCY_MS"
    wrk_run health "$BRIDGE/health" "$WORK/plain.lua"
    wrk_run ingest "$BRIDGE" "$WORK/ingest.lua" "ing"
    body=$DEDUP_BODY
    curl -sf -o /dev/null -X PUT "$BRIDGE/v1/apps/$APP/devices/dedup-1/push-token" -H 'Content-Type: application/json' -d "$body"
    answer=$(curl -s -w ' %{http_code}' -X PUT "$BRIDGE/v1/apps/$APP/devices/dedup-1/push-token" -H 'Content-Type: application/json' -d "$body")
    [[ "$answer" == *'"deduplicated":true'*' 200' ]] || { echo "the dedup request is not answered 200 deduplicated: $answer" >&2; exit 1; }
    wrk_run dedup "$BRIDGE" "$WORK/dedup.lua"
    wrk_run normalize "$BRIDGE" "$WORK/normalize.lua"
    wrk_run health_after "$BRIDGE/health" "$WORK/plain.lua"
    record "{\"figure\": \"rss.ingest\", \"kb\": $(rss_kb "$BRIDGE_PID")}"
    me_latency 0
    wrk_run ingest_live "$BRIDGE" "$WORK/ingest.lua" "live"
    stop_bridge
fi

if [[ " $PHASES " == *" workflow "* ]]; then
    for latency in 0 "$LATENCY_MS"; do
        CFG=$(config "$WORK/workflow-$latency")
        python3 - "$WORK/workflow-$latency/devices.csv" "$WORKFLOW_N" "$latency" <<'EOF'
import sys
path, n, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    f.write("deviceId,provider,token\n")
    for i in range(n):
        f.write(f"wf{tag}-{i},fcm,wf{tag}-{i}:APA91bWorkflowTokenxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n")
EOF
        me_latency "$latency"
        start_bridge "$CFG" "workflow_$latency"
        log "workflow: $WORKFLOW_N devices, ME latency ${latency} ms"
        b0=$(cpu_ticks "$BRIDGE_PID"); s0=$(cpu_ticks "$SANDBOX_PID")
        t0=$(now)
        (cd "$WORK/workflow-$latency" && "$BIN" import devices.csv --app "$APP" --url "$BRIDGE" --concurrency "$CONNS" >import.log 2>&1) &
        IMPORT_PID=$!
        t1=$(poll_registered "$BRIDGE" "$WORKFLOW_N" 600)
        b1=$(cpu_ticks "$BRIDGE_PID"); s1=$(cpu_ticks "$SANDBOX_PID")
        wait "$IMPORT_PID" || { cat "$WORK/workflow-$latency/import.log" >&2; exit 1; }
        # CPU time per device (ingest, ME calls and storage; the sandbox's three answers), and the ME calls'
        # mean duration as the bridge saw them: where a device's time goes (these move less with the load).
        record "{\"figure\": \"workflow_$latency\", \"devices\": $WORKFLOW_N, \"latency_ms\": $latency, \"seconds\": $(python3 -c "print(round($t1 - $t0, 3))"), \"devices_per_s\": $(python3 -c "print(round($WORKFLOW_N / ($t1 - $t0), 1))"), \"rss_kb\": $(rss_kb "$BRIDGE_PID"), \"bridge_cpu_ms_per_device\": $(per_device "$b0" "$b1"), \"sandbox_cpu_ms_per_device\": $(per_device "$s0" "$s1"), \"me_call_ms\": $(me_call_ms "$BRIDGE")}"
        log "workflow at ${latency} ms: $(tail -n1 "$RESULTS")"
        stop_bridge
    done
    curl -sf -o /dev/null -X DELETE "$SANDBOX/_sandbox/faults" || true
fi

if [[ " $PHASES " == *" scale "* ]]; then
    me_latency "$INGEST_ME_LATENCY_MS"   # as for ingest: the API path, not the workflow
    for size in "$SCALE_SMALL" "$SCALE_LARGE"; do
        CFG=$(config "$WORK/scale-$size")
        t0=$(now)
        "$BIN" seed --config "$CFG" --devices "$size" >&2
        t1=$(now)
        sync   # the seed's dirty pages written back now, not while the reads run
        record "{\"figure\": \"seed_$size\", \"devices\": $size, \"seconds\": $(python3 -c "print(round($t1 - $t0, 3))"), \"db_bytes\": $(stat -c %s "$WORK/scale-$size/pushbridge.sqlite")}"
        start_bridge "$CFG" "seeded_$size"
        wrk_run "reads_$size" "$BRIDGE" "$WORK/reads.lua" "$size"
        wrk_run "ingest_$size" "$BRIDGE" "$WORK/ingest.lua" "s$size"
        record "{\"figure\": \"rss_$size\", \"kb\": $(rss_kb "$BRIDGE_PID")}"
        stop_bridge
        rm -rf "$WORK/scale-$size"
    done
    me_latency 0
fi

if [[ " $PHASES " == *" scaleout "* ]]; then
    log "scaleout: starting PostgreSQL (PG_DURABLE=1: fsync, synchronous_commit, full_page_writes on)"
    PG_URL=$(PG_DURABLE=1 "$ROOT/scripts/pg-test-server.sh" start "$WORK/pg")
    PG_SERVER=${PG_URL%/*}   # postgres://postgres@127.0.0.1:PORT, the database left off
    PSQL="$(cat "$WORK/pg/bin")/psql"
    # storage.encryptionKey, the same on every instance: 32 bytes, base64 (as scripts/multi-instance-test.py)
    PG_KEY=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
    pg_show() { "$PSQL" -X -q -At "$PG_URL" -c "SHOW $1"; }
    record "{\"figure\": \"scaleout_postgres\", \"version\": \"$(pg_show server_version)\", \"fsync\": \"$(pg_show fsync)\", \"synchronous_commit\": \"$(pg_show synchronous_commit)\", \"full_page_writes\": \"$(pg_show full_page_writes)\", \"pool_size\": $PG_POOL}"
    log "scaleout: $(tail -n1 "$RESULTS")"
    # scaleout_bridges N KIND: N instances (A on BRIDGE_PORT, B on BRIDGE2_PORT) on a fresh database scaleout_KIND_N
    scaleout_bridges() {
        local n=$1 kind=$2 url
        "$PSQL" -X -q -v ON_ERROR_STOP=1 "$PG_URL" -c "CREATE DATABASE scaleout_${kind}_$n" >&2
        url="$PG_SERVER/scaleout_${kind}_$n"
        start_bridge "$(config "$WORK/scaleout-$kind-$n-A" "$url")" "scaleout_${kind}_${n}_A"
        if (( n == 2 )); then
            start_bridge "$(config "$WORK/scaleout-$kind-$n-B" "$url" "$BRIDGE2_PORT")" "scaleout_${kind}_${n}_B" "$BRIDGE2_PORT"
        fi
        log "scaleout $kind: $n instance(s), pids $BRIDGE_PID $BRIDGE2_PID, database scaleout_${kind}_$n"
    }
    for n in 1 2; do
        # ingest: as the ingest phase, the same load (wrk -c CONNS) on each instance
        me_latency "$INGEST_ME_LATENCY_MS"
        scaleout_bridges "$n" ingest
        if (( n == 1 )); then
            wrk_run scaleout_ingest_1 "$BRIDGE" "$WORK/ingest.lua" "so1"
        else
            wrk_json "$BRIDGE" "$WORK/ingest.lua" "so2a" >"$WORK/scaleout-ingest-A.json" &
            wrk_a=$!
            wrk_json "$BRIDGE2" "$WORK/ingest.lua" "so2b" >"$WORK/scaleout-ingest-B.json" &
            wrk_b=$!
            wait "$wrk_a" || exit 1
            wait "$wrk_b" || exit 1
            record "$(python3 - "$WORK/scaleout-ingest-A.json" "$WORK/scaleout-ingest-B.json" "$THREADS" "$CONNS" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
n = a["requests"] + b["requests"]
both = {"requests": n, "duration_s": max(a["duration_s"], b["duration_s"]), "rps": round(a["rps"] + b["rps"], 1),
        "p50_ms": max(a["p50_ms"], b["p50_ms"]), "p99_ms": max(a["p99_ms"], b["p99_ms"]),   # the worse instance
        "mean_ms": round((a["mean_ms"] * a["requests"] + b["mean_ms"] * b["requests"]) / max(n, 1), 3),
        "non2xx": a["non2xx"] + b["non2xx"], "socket_errors": a["socket_errors"] + b["socket_errors"]}
print(json.dumps({"figure": "scaleout_ingest_2", "threads": int(sys.argv[3]), "connections": int(sys.argv[4]),
                  "wrk": both, "instances": {"A": a, "B": b}}))
EOF
)"
            log "scaleout_ingest_2: $(tail -n1 "$RESULTS")"
        fi
        stop_bridge

        # workflow: SCALEOUT_N new devices, sandbox answering at once; one import per instance, the CSV in halves
        me_latency 0
        dir="$WORK/scaleout-workflow-$n"
        mkdir -p "$dir"
        python3 - "$dir" "$SCALEOUT_N" "$n" <<'EOF'
import sys
folder, total, parts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for p in range(parts):   # devices-0.csv for A, devices-1.csv for B: consecutive slices of the N devices
    with open(f"{folder}/devices-{p}.csv", "w") as f:
        f.write("deviceId,provider,token\n")
        for i in range(total * p // parts, total * (p + 1) // parts):
            f.write(f"so{parts}-{i},fcm,so{parts}-{i}:APA91bWorkflowTokenxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n")
EOF
        scaleout_bridges "$n" workflow
        bases=("$BRIDGE" "$BRIDGE2")
        import_pids=()
        t0=$(now)
        for ((i = 0; i < n; i++)); do
            (cd "$dir" && "$BIN" import "devices-$i.csv" --app "$APP" --url "${bases[i]}" --concurrency "$CONNS" >"import-$i.log" 2>&1) &
            import_pids+=("$!")
        done
        t1=$(poll_registered "$BRIDGE" "$SCALEOUT_N" 600)   # the shared database: A's stats count B's devices too
        for i in "${!import_pids[@]}"; do
            wait "${import_pids[i]}" || { cat "$dir/import-$i.log" >&2; exit 1; }
        done
        rss=$(rss_kb "$BRIDGE_PID")
        if (( n == 2 )); then rss="$rss, $(rss_kb "$BRIDGE2_PID")"; fi
        record "{\"figure\": \"scaleout_workflow_$n\", \"instances\": $n, \"devices\": $SCALEOUT_N, \"seconds\": $(python3 -c "print(round($t1 - $t0, 3))"), \"devices_per_s\": $(python3 -c "print(round($SCALEOUT_N / ($t1 - $t0), 1))"), \"rss_kb\": [$rss]}"
        log "scaleout_workflow_$n: $(tail -n1 "$RESULTS")"
        stop_bridge
    done
fi
record "{\"figure\": \"machine_end\", \"loadavg_end\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}"

# --- report ------------------------------------------------------------------------------------------
python3 - "$RESULTS" "$OUT" "$CALLS_PER_DEVICE" "$MAXCONC" "$LATENCY_MS" "$SCALE_SMALL" "$SCALE_LARGE" "$INGEST_ME_LATENCY_MS" <<'EOF'
import json, sys
results, out, calls, maxconc, latency, small, large, ingest_latency = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7], int(sys.argv[8])
f = {}
for line in open(results):
    o = json.loads(line)
    f[o.pop("figure")] = o
def rps(name): return f[name]["wrk"]["rps"] if name in f else None
rows = []
def row(name, value, target, ok, note):
    rows.append({"figure": name, "value": value, "target": target, "pass": ok, "note": note})
def ratio(a, b): return None if a is None or b is None or b == 0 else a / b
health = rps("health")
if health:
    ing = f["ingest"]["wrk"]
    r = ratio(ing["rps"], health)
    row("ingest ÷ /health", f"{r:.2f}", "≥ 0.5", r >= 0.5, f"{ing['rps']:.0f} ÷ {health:.0f} req/s")
    row("ingest p50 / p99", f"{ing['p50_ms']:.1f} / {ing['p99_ms']:.1f} ms", "p99 < 20 ms", ing["p99_ms"] < 20, f"non-2xx {ing['non2xx']}")
    d = f["dedup"]["wrk"]
    r = ratio(d["rps"], health)
    row("dedup ÷ /health", f"{r:.2f}", "≥ 0.8", r >= 0.8, f"{d['rps']:.0f} ÷ {health:.0f} req/s, p99 {d['p99_ms']:.1f} ms")
    if "normalize" in f:
        n = f["normalize"]["wrk"]
        rows.append({"figure": "(note) no storage: POST /v1/tokens/normalize ÷ /health", "value": f"{n['rps'] / health:.2f}", "target": "", "pass": None,
                     "note": f"{n['rps']:.0f} req/s: body, JSON, provider plugin, token hash and a JSON answer; the ceiling of any PUT"})
    if "ingest_live" in f:
        l = f["ingest_live"]["wrk"]
        rows.append({"figure": "(note) ingest with the workflow running", "value": f"{l['rps'] / health:.2f}", "target": "", "pass": None,
                     "note": f"{l['rps']:.0f} req/s, p50 {l['p50_ms']:.1f} / p99 {l['p99_ms']:.1f} ms; sandbox answering at once on the same cores"})
if "workflow_0" in f:
    me = rps("me_limit")
    limit = me / calls
    w = f["workflow_0"]["devices_per_s"]
    r = w / limit
    row("workflow ÷ (ME limit ÷ calls)", f"{r:.2f}", "≥ 0.7", r >= 0.7, f"{w:.0f} dev/s ÷ ({me:.0f} ÷ {calls})")
    w0 = f["workflow_0"]
    if r < 0.7 and "bridge_cpu_ms_per_device" in w0:
        # The CPU a device may cost on these cores for 0.7, all processes together (bridge, sandbox, import).
        budget = f["machine"]["nproc"] * 1000 / (0.7 * limit)
        left = budget - w0["sandbox_cpu_ms_per_device"]
        rows.append({"figure": "(note) bridge CPU budget per device for 0.7", "value": f"{left:.2f} ms", "target": "", "pass": None,
                     "note": f"0.7 × {limit:.0f} dev/s on {f['machine']['nproc']} cores leaves {budget:.2f} ms of CPU per device for all processes; "
                             f"the sandbox takes {w0['sandbox_cpu_ms_per_device']:.2f} of it, the bridge spends {w0['bridge_cpu_ms_per_device']:.2f} "
                             f"(the import client's share comes on top)"})
    key = f"workflow_{latency}"
    ideal = maxconc / (calls * latency / 1000)
    w = f[key]["devices_per_s"]
    r = w / ideal
    row(f"workflow at {latency} ms ÷ ideal", f"{r:.2f}", "≥ 0.9", r >= 0.9, f"{w:.0f} dev/s ÷ ({maxconc} ÷ ({calls} × {latency} ms)) = {ideal:.0f}")
    w0 = f["workflow_0"]["devices_per_s"]
    if w0 < 0.9 * ideal:
        rows.append({"figure": f"(note) workflow at 0 ms ÷ ideal at {latency} ms", "value": f"{w0 / ideal:.2f}", "target": "", "pass": None,
                     "note": f"with ME answering at once this machine does {w0:.0f} dev/s, below 0.9 × {ideal:.0f}: the CPU, not the latency, is the limit"})
    if limit < ideal:
        rows.append({"figure": f"(note) workflow at {latency} ms ÷ min(ideal, ME limit ÷ calls)", "value": f"{w / limit:.2f}", "target": "", "pass": None,
                     "note": f"the sandbox alone answers {me:.0f} req/s here, so at most {limit:.0f} dev/s whatever the latency"})
if f"reads_{large}" in f:
    for what in ("ingest", "reads"):
        a, b = rps(f"{what}_{large}"), rps(f"{what}_{small}")
        r = a / b
        row(f"{what} at {large} ÷ at {small}", f"{r:.2f}", "≥ 0.8", r >= 0.8, f"{a:.0f} ÷ {b:.0f} req/s")
    rss = f[f"rss_{large}"]["kb"] / 1024
    row(f"RSS at {large} devices", f"{rss:.2f} MB", "< 64 MB", rss < 64, f"at {small}: {f[f'rss_{small}']['kb'] / 1024:.2f} MB")
if "scaleout_ingest_1" in f and "scaleout_ingest_2" in f:
    one, two = f["scaleout_ingest_1"]["wrk"], f["scaleout_ingest_2"]["wrk"]
    row("PostgreSQL ingest, 2 instances ÷ 1", f"{ratio(two['rps'], one['rps']):.2f}", "", None,
        f"{two['rps']:.0f} ÷ {one['rps']:.0f} req/s; p50 / p99 {two['p50_ms']:.1f} / {two['p99_ms']:.1f} ms "
        f"(the worse instance) ÷ {one['p50_ms']:.1f} / {one['p99_ms']:.1f} ms")
if "scaleout_workflow_1" in f and "scaleout_workflow_2" in f:
    one, two = f["scaleout_workflow_1"]["devices_per_s"], f["scaleout_workflow_2"]["devices_per_s"]
    row("PostgreSQL workflow, 2 instances ÷ 1", f"{ratio(two, one):.2f}", "", None, f"{two:.0f} ÷ {one:.0f} dev/s")
for name in ("startup.fresh", f"startup.seeded_{large}"):
    if name in f:
        s = f[name]["seconds"]
        row(f"start to ready ({name.split('.')[1]})", f"{s:.3f} s", "< 0.5 s", s < 0.5, "")
doc = {"figures": f, "table": rows}
json.dump(doc, open(out, "w"), indent=2, sort_keys=True)
m = f["machine"]
print(f"\npushbridge end-to-end benchmark: {m['nproc']} cores, {m['cpu']}, load {m['loadavg_start']} -> {f.get('machine_end', {}).get('loadavg_end', '?')}")
print(f"wrk -t{m['threads']} -c{m['connections']} -d{m['duration_s']}s; workflow N = {m['workflow_devices']} token-only PUTs ({calls} ME calls per device); maxConcurrentRequests {maxconc}")
print(f"ingest, dedup and scale runs with ME answers held {ingest_latency} ms (the API path alone)")
if "scaleout_postgres" in f:
    pg = f["scaleout_postgres"]
    print(f"scaleout: PostgreSQL {pg['version']} (fsync {pg['fsync']}, synchronous_commit {pg['synchronous_commit']}, "
          f"full_page_writes {pg['full_page_writes']}), poolSize {pg['pool_size']} per instance, wrk -c{m['connections']} "
          f"per instance, workflow N = {m.get('scaleout_devices', '?')}")
print()
print("| figure | value | target | result | figures |")
print("| --- | --- | --- | --- | --- |")
for r in rows:
    verdict = "" if r["pass"] is None else ("PASS" if r["pass"] else "MISS")
    print(f"| {r['figure']} | {r['value']} | {r['target']} | {verdict} | {r['note']} |")
print()
other = []
for k in ("health", "health_after", "normalize", "ingest", "dedup", "ingest_live", "me_limit", "reads_" + small, "ingest_" + small, "reads_" + large, "ingest_" + large):
    if k in f:
        w = f[k]["wrk"]
        cpu = f[k].get("server_cpu_us_per_request")
        other.append(f"| {k} | {w['rps']:.0f} | {w['p50_ms']:.2f} | {w['p99_ms']:.2f} | {w['non2xx']} | {'' if cpu is None else cpu} |")
if "scaleout_ingest_1" in f:
    w = f["scaleout_ingest_1"]["wrk"]
    other.append(f"| scaleout_ingest_1 (PostgreSQL, A) | {w['rps']:.0f} | {w['p50_ms']:.2f} | {w['p99_ms']:.2f} | {w['non2xx']} | |")
if "scaleout_ingest_2" in f:
    for name, w in sorted(f["scaleout_ingest_2"]["instances"].items()):
        other.append(f"| scaleout_ingest_2 (PostgreSQL, {name}) | {w['rps']:.0f} | {w['p50_ms']:.2f} | {w['p99_ms']:.2f} | {w['non2xx']} | |")
    w = f["scaleout_ingest_2"]["wrk"]
    other.append(f"| scaleout_ingest_2 (A + B) | {w['rps']:.0f} | ≤ {w['p50_ms']:.2f} | ≤ {w['p99_ms']:.2f} | {w['non2xx']} | |")
print("| run | req/s | p50 ms | p99 ms | non-2xx | server CPU µs per request |\n| --- | --- | --- | --- | --- | --- |")
print("\n".join(other))
for k in ("workflow_0", f"workflow_{latency}"):
    if k in f and "bridge_cpu_ms_per_device" in f[k]:
        w = f[k]
        print(f"\n{k}: {w['devices_per_s']:.0f} dev/s; CPU per device: bridge {w['bridge_cpu_ms_per_device']} ms, "
              f"sandbox {w['sandbox_cpu_ms_per_device']} ms; ME call as the bridge saw it {w['me_call_ms']} ms (mean)", end="")
for k in (f"seed_{small}", f"seed_{large}"):
    if k in f:
        print(f"\n{k}: {f[k]['seconds']} s, database {f[k]['db_bytes'] / 1e6:.0f} MB", end="")
print(f"\n\nfigures written to {out}")
EOF
