#!/usr/bin/env bash
# The command-line tools as a user runs them: `pushbridge normalize` and `pushbridge export` on the debug build.
#   scripts/test-cli.sh [BINARY]    (default: the debug build, built if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib-binary.sh
pushbridge_binary test-cli "$@"

passed=0; failed=0
check() {  # check NAME CONDITION...
    local name=$1; shift
    if "$@"; then echo "PASS $name"; passed=$((passed + 1)); else echo "FAIL $name"; failed=$((failed + 1)); fi
}
out=$(mktemp); err=$(mktemp); trap 'rm -f "$out" "$err"' EXIT

# An Expo push token sent as an FCM token: exit 1, the reason names Expo and the native token, stdout empty.
status=0; "$bin" normalize --provider fcm 'ExponentPushToken[xxxxxxxxxxxxxxxxxxxxxx]' >"$out" 2>"$err" || status=$?
check "normalize refuses an Expo token as fcm (exit $status)" test "$status" -eq 1
check "the reason names Expo and the native token: $(cat "$err")" grep -q "Expo push token.*native FCM token" "$err"
check "nothing on stdout" test ! -s "$out"

# A OneSignal/Airship id (a UUID) as an APNs token.
status=0; "$bin" normalize --provider apns '1b4e28ba-2fa1-11d2-883f-0016d3cca427' >"$out" 2>"$err" || status=$?
check "normalize refuses a UUID as apns (exit $status)" test "$status" -eq 1
check "the reason names the wrapper services: $(cat "$err")" grep -q "OneSignal.*native APNs device token" "$err"

# A real-shaped FCM token still normalises.
token="dAbCdEfGhIj:APA91b$(head -c 100 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')"
status=0; "$bin" normalize --provider fcm "$token" >"$out" 2>"$err" || status=$?
check "normalize accepts an FCM token (exit $status)" test "$status" -eq 0
check "prints provider, platform, pushToken and tokenHash" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["provider"] == "fcm" and d["platform"] == "android" and d["pushToken"] == sys.argv[2] and len(d["tokenHash"]) == 64
' "$out" "$token"

# Export, read-only from a SQLite store: 120 seeded devices as CSV to a file (header + one row each, the status's
# columns, no token), as NDJSON to stdout (one status per line), a state filter, and a bad state refused (exit 64).
work=$(mktemp -d); trap 'rm -f "$out" "$err"; rm -rf "$work"' EXIT
cat >"$work/config.yaml" <<YAML
storage: { url: "sqlite://$work/store.sqlite" }
emarsys: { sandbox: true }
apps: [{ code: EMS12-34567, contactFieldId: 3 }]
YAML
status=0; "$bin" seed --config "$work/config.yaml" --devices 120 >"$out" 2>"$err" || status=$?
check "seed writes 120 devices (exit $status)" test "$status" -eq 0
status=0; "$bin" export --config "$work/config.yaml" --app EMS12-34567 --format csv --output "$work/devices.csv" >"$out" 2>"$err" || status=$?
check "export --format csv --output exits 0 (exit $status)" test "$status" -eq 0
check "the CSV file holds a header and 120 rows of the status's columns, and no partial file is left" python3 -c '
import csv, sys, os
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0][:3] == ["appCode", "deviceId", "clientId"] and "lastSeenAt" in rows[0], rows[0]
assert len(rows) == 121 and all(len(r) == len(rows[0]) for r in rows), len(rows)
assert {r[rows[0].index("state")] for r in rows[1:]} == {"registered"}
assert len({r[1] for r in rows[1:]}) == 120 and not os.path.exists(sys.argv[1] + ".partial")
' "$work/devices.csv"
status=0; "$bin" export --config "$work/config.yaml" --app EMS12-34567 >"$out" 2>"$err" || status=$?
check "export to stdout as NDJSON: 120 status documents (exit $status)" python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
docs = [json.loads(l) for l in lines]
assert len(docs) == 120 and all(d["appCode"] == "EMS12-34567" and len(d["tokenHash"]) == 64 for d in docs)
assert not any("pushToken" in d for d in docs)
' "$out"
status=0; "$bin" export --config "$work/config.yaml" --app EMS12-34567 --state failed >"$out" 2>"$err" || status=$?
check "export --state failed: nothing (exit $status)" test "$status" -eq 0 -a ! -s "$out"
status=0; "$bin" export --config "$work/config.yaml" --app EMS12-34567 --state gone >"$out" 2>"$err" || status=$?
check "export --state gone is refused (exit $status), naming the states" bash -c "test $status -eq 64 && grep -q 'registered' '$err'"

echo "test-cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
