#!/usr/bin/env python3
"""Webhook crash test: kill -9 in the middle of a burst of state changes while the receiver answers 503.

Starts the ME sandbox, a webhook receiver (Python's http.server on loopback) and the bridge (the real binary, SQLite
on a temp file, or with --store postgres a fresh schema of the server PUSHBRIDGE_TEST_POSTGRES_URL names, else of
one this script starts with scripts/pg-test-server.sh). Devices are started, rotate their
tokens, and some have their token removed or reported dead, while the receiver answers 503 (with Retry-After now and
then) and the bridge is SIGKILLed at seeded moments and restarted on the same storage. Then the receiver recovers,
and the checks run once everything is at rest:

  signatures  every request the receiver got verifies with the published Standard Webhooks library
              (`standardwebhooks` from PyPI, installed by this script), not the bridge's code
  secrets     no body holds a push token (nor anything that is not a status: ids and hashes only)
  delivered   the outbox is empty (backlog 0) and nothing was given up: every message written was answered 2xx
  final       each device's last event (in first-arrival order) matches its status: registered with the status's
              token hash, or unregistered with the reason of the write that ended it (removed, invalidated); none is
              missing, so no state change was lost to a kill
  order       per device, the events' timestamps never go back (in first-arrival order), and a message id that
              arrives again (at-least-once) carries the same body

Ends with `N passed, M failed`; exits non-zero when any check fails.
"""
import argparse
import base64
import functools
import http.server
import json
import os
import random
import shutil
import string
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from testlib import APP, REPO, Bridge, free_port, log, requests, wait_http

print = functools.partial(print, flush=True)  # noqa: A001

STANDARDWEBHOOKS = "standardwebhooks==1.0.0"
try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", STANDARDWEBHOOKS])
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
B64URL = string.ascii_letters + string.digits + "-_"


class Receiver:
    """Records every request; answers 503 while `down`, else 204."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []  # (webhook-id, body bytes, verified, error)
        self.down = True
        self.answered = {"503": 0, "204": 0}
        verifier = Webhook(SECRET)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    verifier.verify(body, headers)
                    ok, err = True, None
                except WebhookVerificationError as e:
                    ok, err = False, str(e)
                with receiver.lock:
                    receiver.requests.append((headers.get("webhook-id"), body, ok, err))
                    down = receiver.down
                    receiver.answered["503" if down else "204"] += 1
                if down:
                    self.send_response(503)
                    if random.random() < 0.3:
                        self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self.send_response(204)
                    self.end_headers()

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self):
        with self.lock:
            return list(self.requests)


def metric(base, name):
    text = requests.get(f"{base}/metrics", timeout=10).text
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    return total if seen else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(REPO, ".build/debug/pushbridge"))
    ap.add_argument("--devices", type=int, default=150)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--converge-timeout", type=float, default=180)
    args = ap.parse_args()

    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        print(f"no executable at {binary}", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="pb-whcrash-")
    private = os.path.join(work, "pushbridge")
    shutil.copy2(binary, private)
    rng = random.Random(args.seed)
    receiver = Receiver()
    sb_port, br_port = free_port(), free_port()
    sb_base, base = f"http://127.0.0.1:{sb_port}", f"http://127.0.0.1:{br_port}"
    pg_dir = None
    if args.store == "postgres":
        url = os.environ.get("PUSHBRIDGE_TEST_POSTGRES_URL")
        if not url:
            pg_dir = os.path.join(work, "pg")
            url = subprocess.check_output([os.path.join(REPO, "scripts/pg-test-server.sh"), "start", pg_dir],
                                          text=True).strip()
        sep = "&" if "?" in url else "?"
        storage = (f'url: "{url}{sep}schema=wh{uuid.uuid4().hex[:12]}"\n'
                   f'  encryptionKey: "{base64.b64encode(os.urandom(32)).decode()}"')
    else:
        storage = f'url: "sqlite://{work}/bridge.sqlite"'
    config = os.path.join(work, "bridge.yaml")
    with open(config, "w") as f:
        f.write(f"""http: {{ host: 127.0.0.1, port: {br_port} }}
storage:
  {storage}
emarsys:
  sandbox: false
  clientServiceURL: {sb_base}
  eventServiceURL: {sb_base}
  requestTimeoutSeconds: 5
  retry: {{ initialDelayMs: 50, maxDelayMs: 1000 }}
providers: {{ directory: "" }}
webhooks: {{ timeoutSeconds: 2, retry: {{ initialDelayMs: 100, maxDelayMs: 1000 }} }}
apps:
  - code: {APP}
    webhooks:
      - url: http://127.0.0.1:{receiver.port}/hook
        secret: {SECRET}
""")
    log(f"seed {args.seed}; {args.devices} devices, {args.kills} kills, "
        f"{args.store}; workdir {work}")
    sandbox = subprocess.Popen([private, "sandbox", "--port", str(sb_port), "--host", "127.0.0.1"], cwd=work,
                               stdout=open(os.path.join(work, "sandbox.log"), "wb"), stderr=subprocess.STDOUT)
    bridge = Bridge(private, config, br_port, work)
    results = []
    try:
        if not wait_http(f"{sb_base}/_sandbox/requests?limit=1", 60, sandbox):
            raise RuntimeError("sandbox did not come up")
        bridge.start()

        # The burst: per device a start, rotations, and for some a removal or a dead-token report, in order per
        # device, devices interleaved; the bridge killed at seeded points. A write is retried until it got a 2xx.
        tokens = {}
        steps = []
        ending = {}  # device -> the reason its device.unregistered must carry, for the ones that end without a token
        for n in range(args.devices):
            d = f"wh-{n:04d}"
            tokens[d] = [f"d{n}:APA91b" + "".join(rng.choice(B64URL) for _ in range(60)) for _ in range(3)]
            plan = [("PUT", f"/v1/apps/{APP}/devices/{d}", {"provider": "fcm", "token": tokens[d][0]})]
            for t in tokens[d][1:rng.randint(1, 3)]:
                plan.append(("PUT", f"/v1/apps/{APP}/devices/{d}/push-token", {"provider": "fcm", "token": t}))
            end = rng.random()
            if end < 0.2:
                plan.append(("DELETE", f"/v1/apps/{APP}/devices/{d}/push-token", None))
                ending[d] = "removed"
            elif end < 0.35:
                plan.append(("POST", f"/v1/apps/{APP}/tokens/invalidate", {"provider": "fcm", "token": plan[-1][2]["token"]}))
                ending[d] = "invalidated"
            steps.append(plan)
        order = []
        cursors = [0] * len(steps)
        live = list(range(len(steps)))
        while live:
            i = rng.choice(live)
            order.append(steps[i][cursors[i]])
            cursors[i] += 1
            if cursors[i] == len(steps[i]):
                live.remove(i)
        kill_at = sorted(rng.sample(range(len(order) // 10, len(order) * 9 // 10), args.kills))
        session = requests.Session()
        for k, (method, path, body) in enumerate(order):
            if kill_at and k == kill_at[0]:
                kill_at.pop(0)
                time.sleep(rng.uniform(0, 0.3))
                bridge.kill()
                log(f"SIGKILL after {k} writes")
                time.sleep(rng.uniform(0.05, 0.3))
                bridge.start()
            for _ in range(200):
                try:
                    r = session.request(method, base + path, json=body, timeout=10)
                    if 200 <= r.status_code < 300:
                        break
                    if r.status_code not in (429, 503):
                        raise RuntimeError(f"{method} {path} -> {r.status_code} {r.text[:200]}")
                except requests.RequestException:
                    session = requests.Session()
                time.sleep(0.1)
            else:
                raise RuntimeError(f"{method} {path} never accepted")
        log(f"burst done: {len(order)} writes; receiver answered {receiver.answered} so far")
        # Let the 503s go on a little past the last kill, then recover.
        time.sleep(2)
        with receiver.lock:
            receiver.down = False
        log("receiver recovered")

        deadline = time.monotonic() + args.converge_timeout
        statuses = {}
        while True:
            statuses = {}
            cursor = None
            while True:
                params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
                page = requests.get(f"{base}/v1/apps/{APP}/devices", params=params, timeout=30).json()
                for dev in page["devices"]:
                    statuses[dev["deviceId"]] = dev
                cursor = page.get("nextCursor")
                if not cursor:
                    break
            busy = [d for d, s in statuses.items() if s["pending"] > 0 or s["state"] in ("pending", "retrying")]
            backlog = metric(base, "pushbridge_webhook_backlog")
            if not busy and backlog == 0:
                break
            if time.monotonic() > deadline:
                break
            time.sleep(1)
        received = receiver.snapshot()
        log(f"at rest: {len(statuses)} devices, backlog {backlog}, {len(received)} requests received "
            f"({len({r[0] for r in received})} distinct messages)")

        bad = [(i, e) for i, _, ok, e in received if not ok]
        results.append(("signatures", received and not bad,
                        f"{len(received)} verified with {STANDARDWEBHOOKS}" if not bad else f"{len(bad)} failed: {bad[:3]}"))
        leaked = [i for i, body, _, _ in received if any(t.encode() in body for ts in tokens.values() for t in ts)]
        results.append(("secrets", not leaked, f"{len(leaked)} bodies with a token" if leaked else "no token in any body"))
        given_up = metric(base, "pushbridge_webhook_deliveries_total{outcome=\"given_up\"}") or 0
        results.append(("delivered", backlog == 0 and not busy and given_up == 0,
                        f"backlog {backlog}, busy devices {len(busy)}, given up {given_up}"))

        first = {}
        per_device = {}
        same_body = True
        for msg_id, body, _, _ in received:
            if msg_id in first:
                same_body &= first[msg_id] == body
                continue
            first[msg_id] = body
            event = json.loads(body)
            device = event["data"].get("deviceId")
            per_device.setdefault(device, []).append(event)
        wrong = []
        for d, status in statuses.items():
            events = per_device.get(d, [])
            last = events[-1] if events else None
            if status["state"] == "registered":
                ok = last and last["type"] == "device.registered" and last["data"]["tokenHash"] == status["tokenHash"]
            else:
                # A device whose token went before it ever reached ME had nothing to lose: no event at all. Otherwise
                # the last event is its unregistration, with the reason of the write that ended it.
                ok = status["state"] == "unregistered" and (not events or (
                    last["type"] == "device.unregistered" and last["data"].get("reason") == ending.get(d)))
            if not ok:
                wrong.append((d, status["state"], [e["type"] for e in events]))
        results.append(("final", not wrong, f"{len(statuses)} devices match their last event" if not wrong
                        else f"{len(wrong)} do not, e.g. {wrong[:3]}"))
        backwards = [d for d, events in per_device.items()
                     if any(a["timestamp"] > b["timestamp"] for a, b in zip(events, events[1:]))]
        results.append(("order", not backwards and same_body,
                        f"{len(per_device)} devices in order; {len(received) - len(first)} repeats, same bodies: {same_body}"
                        if not backwards else f"out of order: {backwards[:3]}"))
    except Exception as e:  # noqa: BLE001
        results.append(("run", False, f"{type(e).__name__}: {e}"))
    finally:
        bridge.stop()
        sandbox.terminate()
        receiver.server.shutdown()
        if pg_dir:
            subprocess.call([os.path.join(REPO, "scripts/pg-test-server.sh"), "stop", pg_dir])
    for name, ok, detail in results:
        log(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")
    failed = sum(1 for _, ok, _ in results if not ok)
    print(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        log(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
