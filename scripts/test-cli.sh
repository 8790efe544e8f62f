#!/usr/bin/env bash
# The command-line tools as a user runs them: `pushbridge normalize` on the debug build.
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

echo "test-cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
