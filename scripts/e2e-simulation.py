#!/usr/bin/env python3
"""End-to-end simulation: seeded random schedules through the real binary and the real sandbox over loopback.

The in-process simulation (Tests/WorkflowTests/Simulation) runs thousands of schedules against a model ME; this one
runs fewer, through exactly what users run: `pushbridge serve` (SQLite, or PostgreSQL with --store postgres) and
`pushbridge sandbox`. Groups of 3 devices share a pool of 3 tokens (so moves are frequent); a seeded schedule
interleaves their writes (starts, some with a new clientId or a login; rotations, removals, logins, logouts,
events, forgets) with ME faults (503, 429 with Retry-After, dropped connections, answers slower than the bridge's
timeout), contact-token expiry, refused refresh tokens, storage faults (the SQLite file made immutable with
chattr +i, or the PostgreSQL server stopped, for 0.2 to 1.5 s: writes answer 503 and the clients retry them) and
SIGKILLs of the bridge. Then ME heals, every failed
device gets a fresh intent, and once nothing is pending the invariants are checked:

  I1  the sandbox saw no token-on-two-clients; at rest no token sits on two clients, and a client no device uses
      any more holds none
  I2  no overlapping request, no non-increasing X-Request-Order, no missing SDK header, no unexpected contact
      token; a stale X-Client-State or deviceEventState only after a kill (a step answered but not committed), at
      most one of each per client and kill
  I3  every device (not forgotten) rests registered or unregistered, with nothing pending
  I5  registered: the sandbox client holds exactly the token of the status's tokenHash; unregistered: no token and
      tokenHash null; the linked contact's kind matches

Replay: the same --seed gives the same schedule. Ends with `N passed, M failed`; exits non-zero on a failure.
"""
import argparse
import base64
import functools
import os
import random
import shutil
import string
import subprocess
import sys
import tempfile
import threading
import time

from testlib import APP, REPO, Bridge, free_port, log, requests, wait_http

print = functools.partial(print, flush=True)  # noqa: A001

B64URL = string.ascii_letters + string.digits + "-_"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(REPO, ".build/debug/pushbridge"))
    ap.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--groups", type=int, default=12, help="groups of 3 devices sharing 3 tokens")
    ap.add_argument("--steps", type=int, default=400, help="schedule steps across all groups")
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--no-storage-faults", dest="storage_faults", action="store_false",
                    help="do not break storage (SQLite: chattr +i; PostgreSQL: stop the server) during the schedule")
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--converge-timeout", type=float, default=180)
    args = ap.parse_args()

    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        print(f"no executable at {binary}; build first (swift build)", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="pb-e2esim-")
    private = os.path.join(work, "pushbridge")
    shutil.copy2(binary, private)  # a concurrent rebuild must not replace the binary under us
    rng = random.Random(args.seed)

    pg_dir = None
    storage = f'url: "sqlite://{work}/bridge.sqlite"'
    if args.store == "postgres":
        url = os.environ.get("PUSHBRIDGE_TEST_POSTGRES_URL")
        if not url:
            pg_dir = os.path.join(work, "pg")
            url = subprocess.check_output([os.path.join(REPO, "scripts/pg-test-server.sh"), "start", pg_dir],
                                          text=True).strip()
        url += ("&" if "?" in url else "?") + f"schema=e2esim_{os.getpid()}_{int(time.time())}"
        key = base64.b64encode(os.urandom(32)).decode()
        storage = f'url: "{url}", encryptionKey: "{key}"'

    sb_port, br_port = free_port(), free_port()
    sb, base = f"http://127.0.0.1:{sb_port}", f"http://127.0.0.1:{br_port}"
    config = os.path.join(work, "bridge.yaml")
    with open(config, "w") as f:
        f.write(f"""http: {{ host: 127.0.0.1, port: {br_port} }}
storage: {{ {storage}, timeoutMs: 1000 }}
emarsys:
  sandbox: false
  clientServiceURL: {sb}
  eventServiceURL: {sb}
  requestTimeoutSeconds: 2
  maxConcurrentRequests: 16
  leaseSeconds: 10
  retry: {{ initialDelayMs: 50, maxDelayMs: 800 }}
providers: {{ directory: "" }}
apps:
  - code: {APP}
    contactFieldId: 3
""")
    log(f"e2e simulation on {args.store}: seed {args.seed}, {args.groups} groups x 3 devices, {args.steps} steps, "
        f"{args.kills} kills; workdir {work}")
    sandbox = subprocess.Popen([private, "sandbox", "--port", str(sb_port), "--host", "127.0.0.1"], cwd=work,
                               stdout=open(os.path.join(work, "sandbox.log"), "wb"), stderr=subprocess.STDOUT)
    bridge = Bridge(private, config, br_port, work)
    results = []

    def check(name, ok, detail=""):
        results.append((name, ok))
        log(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")

    try:
        if not wait_http(f"{sb}/_sandbox/requests?limit=1", 60, sandbox):
            raise RuntimeError("sandbox did not come up")
        bridge.start()
        s = requests.Session()

        tokens = {}  # tokenHash -> token, and per group its tokens
        groups = []
        for g in range(args.groups):
            pool = [f"g{g}t{i}:APA91b" + "".join(rng.choice(B64URL) for _ in range(60)) for i in range(3)]
            for t in pool:
                tokens[s.post(f"{base}/v1/tokens/normalize", json={"provider": "fcm", "token": t}).json()["tokenHash"]] = t
            groups.append({"devices": [f"g{g}-d{i}" for i in range(3)], "tokens": pool})
        path = lambda d: f"{base}/v1/apps/{APP}/devices/{d}"  # noqa: E731

        def write(method, url, body=None):
            """Retries connection errors (the bridge may be down for a restart); a 2xx or 404 is final."""
            for _ in range(200):
                try:
                    r = s.request(method, url, json=body, timeout=10)
                    if r.status_code < 500 and r.status_code != 429:
                        return r
                except requests.RequestException:
                    pass
                time.sleep(0.1)
            raise RuntimeError(f"{method} {url} never answered")

        # Storage faults: the SQLite file and its WAL immutable (chattr +i: writes fail even for root), or the
        # PostgreSQL server stopped, for 0.2 to 1.5 s while the schedule goes on (writes answer 503 and the clients
        # retry them); never during a kill (the restart must open its storage).
        storage_lock = threading.Lock()
        storage_faults = []

        def storage_fault(seconds):
            with storage_lock:
                if args.store == "sqlite":
                    files = [p for p in (f"{work}/bridge.sqlite", f"{work}/bridge.sqlite-wal") if os.path.exists(p)]
                    subprocess.run(["chattr", "+i"] + files, check=True)
                    time.sleep(seconds)
                    subprocess.run(["chattr", "-i"] + files, check=True)
                else:
                    pg_script = os.path.join(REPO, "scripts/pg-test-server.sh")
                    subprocess.run([pg_script, "halt", pg_dir], check=True, capture_output=True)
                    time.sleep(seconds)
                    subprocess.run([pg_script, "resume", pg_dir], check=True, capture_output=True)

        can_break_storage = args.storage_faults and (args.store == "postgres" and pg_dir is not None or args.store == "sqlite"
                                                     and subprocess.run(["chattr", "-i", config], capture_output=True).returncode == 0)
        if args.storage_faults and not can_break_storage:
            log("storage faults off: chattr is not supported here, or PostgreSQL is not this script's own server")

        kill_at = sorted(rng.sample(range(args.steps // 10, args.steps), args.kills))
        kill_marks = []  # the sandbox's last request seq right after each kill, for the failure report
        client_serial = 0
        counts = {}
        # Tokens reported dead, with the device that held them then; cleared when that device is sent one again.
        # At rest ME must not hold such a token on that device's client.
        dead = {}
        for step in range(args.steps):
            g = groups[rng.randrange(len(groups))]
            d = rng.choice(g["devices"])
            roll = rng.randrange(100)
            kind = None
            if roll < 20:
                body = {"provider": "fcm"}
                if rng.random() < 0.9:
                    body["token"] = rng.choice(g["tokens"])
                if rng.random() < 0.15:
                    client_serial += 1
                    body["clientId"] = f"e2e-{args.seed}-{client_serial}"
                if rng.random() < 0.2:
                    body["contact"] = {"fieldValue": f"u{rng.randrange(2)}"}
                kind = "start"
                if write("PUT", path(d), body).status_code < 300 and dead.get(body.get("token")) == d:
                    del dead[body["token"]]
            elif roll < 38:
                kind = "set-token"
                t = rng.choice(g["tokens"])
                if write("PUT", path(d) + "/push-token", {"provider": "fcm", "token": t}).status_code < 300 and dead.get(t) == d:
                    del dead[t]
            elif roll < 43:
                kind = "remove-token"
                write("DELETE", path(d) + "/push-token")
            elif roll < 50:
                kind = "login"
                write("PUT", path(d) + "/contact", {"fieldValue": f"u{rng.randrange(2)}"})
            elif roll < 55:
                kind = "logout"
                write("DELETE", path(d) + "/contact")
            elif roll < 62:
                kind = "events"
                write("POST", path(d) + "/events", {"events": [{"name": "e2e"}]})
            elif roll < 65:
                kind = "forget"
                write("DELETE", path(d))
            elif roll < 68:
                kind = "invalidate"
                t = rng.choice(g["tokens"])
                r = write("POST", f"{base}/v1/apps/{APP}/tokens/invalidate", {"provider": "fcm", "token": t, "reason": "e2e"})
                for x in (r.json().get("devices", []) if r.status_code == 202 else []):
                    dead[t] = x["deviceId"]
            elif roll < 77:
                kind = "fault"
                fault = rng.choice([
                    {"status": 503, "count": rng.randint(1, 3)},
                    {"status": 429, "retryAfter": "1", "count": 1},
                    {"mode": "close", "count": 1},
                    {"latencyMs": 2500, "count": 1},  # slower than requestTimeoutSeconds: the bridge times out
                    {"status": 503, "count": 2, "path": "push-token"},
                ])
                s.post(f"{sb}/_sandbox/faults", json=fault)
            elif roll < 82:
                kind = "expire"
                s.post(f"{sb}/_sandbox/contact-tokens/expire")
            elif roll < 84:
                kind = "revoke"
                s.post(f"{sb}/_sandbox/refresh-tokens/revoke")
            elif roll < 87 and can_break_storage:
                kind = "storage"
                seconds = 0.2 + rng.random() * 1.3
                if not storage_lock.acquire(blocking=False):
                    kind = "pause"  # one storage fault at a time
                else:
                    storage_lock.release()  # taken again by the thread; a kill in between waits for it
                    t = threading.Thread(target=storage_fault, args=(seconds,), daemon=True)
                    t.start()
                    storage_faults.append(t)
            else:
                kind = "pause"
                time.sleep(rng.random() * 0.3)
            counts[kind] = counts.get(kind, 0) + 1
            if kill_at and step == kill_at[0]:
                kill_at.pop(0)
                storage_lock.acquire()  # storage works again before the kill and the restart
                storage_lock.release()
                bridge.kill()
                counts["kill"] = counts.get("kill", 0) + 1
                last = s.get(f"{sb}/_sandbox/requests?limit=1").json()
                kill_marks.append(last[0]["seq"] if last else 0)
                bridge.start()
        for t in storage_faults:
            t.join()
        log(f"schedule done: {dict(sorted(counts.items()))}")

        # ME heals; failed devices get a fresh intent; wait until nothing is pending.
        s.delete(f"{sb}/_sandbox/faults")
        all_devices = [d for g in groups for d in g["devices"]]

        def statuses():
            out = {}
            for d in all_devices:
                r = s.get(path(d), timeout=10)
                out[d] = r.json() if r.status_code == 200 else None
            return out

        deadline = time.monotonic() + args.converge_timeout
        nudged = set()
        while True:
            st = statuses()
            for d, x in st.items():
                if x and x["state"] == "failed" and d not in nudged:
                    nudged.add(d)
                    write("POST", path(d) + "/events", {"events": [{"name": "after-heal"}]})
            busy = [d for d, x in st.items() if x and (x["pending"] > 0 or x["state"] in ("pending", "retrying"))]
            if not busy or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        check("I3 converge: nothing pending, nothing retrying", not busy, f"still busy: {busy[:5]}" if busy else
              f"{sum(1 for x in st.values() if x)} devices, {len(nudged)} failed ones nudged")
        rest = {d: x for d, x in st.items() if x}
        bad = {d: x["state"] for d, x in rest.items() if x["state"] not in ("registered", "unregistered")}
        check("I3 final states: registered or unregistered", not bad, str(bad) if bad else "")

        # The sandbox's view.
        violations = s.get(f"{sb}/_sandbox/violations").json()
        by_kind = {}
        for v in violations:
            by_kind.setdefault(v["kind"], []).append(v)
        soft = ("stale-client-state", "stale-device-event-state")
        hard = {k: v for k, v in by_kind.items() if k not in soft}
        check("I1/I2 no violation seen by the sandbox (stale client states aside)", not hard,
              "; ".join(f"{k} x{len(v)}: {v[0]['detail']}" for k, v in hard.items()))
        # ...and the sandbox did judge the bridge by its invariants (its User-Agent), not by the ME rules alone.
        unjudged = [r for r in s.get(f"{sb}/_sandbox/requests").json() if r.get("route") and not r.get("invariantsChecked")]
        check("the sandbox checked the invariants on every ME request", not unjudged,
              f"{len(unjudged)} unchecked, first {unjudged[0]['method']} {unjudged[0]['path']}" if unjudged else "")
        if hard:
            # What the clients of the first one did, for the report (ids, methods, statuses: no token values).
            first = next(iter(hard.values()))[0]
            named = {first["clientId"]} | {w.strip(",") for w in first["detail"].split() if w.count("-") == 4}
            log_all = s.get(f"{sb}/_sandbox/requests").json()
            # Every finding on those clients (soft ones too), marked on the request it was found on.
            found = {}
            for v in violations:
                if v["clientId"] in named and v.get("requestSeq"):
                    found.setdefault(v["requestSeq"], []).append(f"{v['kind']}: {v['detail']}")
            marks = list(kill_marks)
            for r in log_all:
                while marks and r["seq"] > marks[0]:
                    print(f"    -- bridge killed after #{marks.pop(0)}")
                if r.get("clientId") in named:
                    print(f"    #{r['seq']} {r['clientId'][:8]} {r['method']} {r['path']} -> {r['status']}"
                          f"{' (fault)' if r.get('fault') else ''}"
                          + "".join(f"\n        ^ {f}" for f in found.get(r["seq"], [])))
        # A step answered but never committed (a kill) leaves the client with the state before the answer: at most
        # one of each kind per client and kill. Storage faults lose no answer: they are shorter (at most 1.5 s) than
        # the engine's commit retries (half the lease, 5 s here).
        losses = counts.get("kill", 0)
        for kind in soft:
            stale = by_kind.get(kind, [])
            per_client = {}
            for v in stale:
                per_client[v["clientId"]] = per_client.get(v["clientId"], 0) + 1
            check(f"I2 {kind} only after kills, at most one per client and kill",
                  (losses > 0 or not stale) and all(n <= losses for n in per_client.values()),
                  f"{len(stale)} stale, {counts.get('kill', 0)} kills, {counts.get('storage', 0)} storage faults")

        seen_clients = {r["clientId"] for r in s.get(f"{sb}/_sandbox/requests").json() if r.get("clientId")}
        current = {x["clientId"]: d for d, x in rest.items()}
        holders, orphans, mismatches = {}, [], []
        views = {}
        for c in seen_clients:
            v = s.get(f"{sb}/_sandbox/clients/{c}").json()
            views[c] = v
            if v.get("pushToken"):
                holders.setdefault(v["pushToken"], []).append(c)
                if c not in current:
                    orphans.append(c)
        hash_of = {t: h for h, t in tokens.items()}
        twice = {hash_of.get(t, "?")[:12]: cs for t, cs in holders.items() if len(cs) > 1}
        check("I1 at rest: no token on two clients", not twice, str(twice))
        kept_dead = [f"{d} ({hash_of.get(t, '?')[:12]})" for t, d in dead.items()
                     if d in rest and views.get(rest[d]["clientId"], {}).get("pushToken") == t]
        check("dead tokens: none kept at ME on the device that held it when reported", not kept_dead,
              str(kept_dead) if kept_dead else f"{len(dead)} reports to check")
        check("I1 at rest: no client that no device uses holds a token", not orphans, str(orphans[:5]))
        for d, x in rest.items():
            v = views.get(x["clientId"], {})
            held = v.get("pushToken")
            if x["state"] == "registered":
                if x["tokenHash"] is None or held != tokens.get(x["tokenHash"]):
                    mismatches.append(f"{d} registered, tokenHash {str(x['tokenHash'])[:12]}, ME holds {'a token' if held else 'none'}")
            elif held is not None or x["tokenHash"] is not None:
                mismatches.append(f"{d} unregistered, tokenHash {x['tokenHash']}, ME holds {'a token' if held else 'none'}")
            contact = (v.get("contact") or {}).get("kind", "none")
            if contact != x["contact"]["kind"]:
                mismatches.append(f"{d} contact {x['contact']['kind']} in the status, {contact} at ME")
        check("I5 the status tells the truth (token and contact as the sandbox holds them)", not mismatches,
              "; ".join(mismatches[:5]))

        # The history: state changes are written with the writes that make them, so through kills and storage
        # faults they chain (newest first, each one's `from` is the next one's `to`) and the newest is the state the
        # status shows; entries come newest first; no token value is in it.
        broken, leaked, total = [], [], 0
        token_values = [t for t in tokens.values() if len(t) >= 8]
        for d, x in rest.items():
            r = s.get(path(d) + "/history?limit=500", timeout=10)
            if r.status_code != 200:
                broken.append(f"{d}: history answered {r.status_code}")
                continue
            entries = r.json()["entries"]
            total += len(entries)
            ats = [e["at"] for e in entries]
            if ats != sorted(ats, reverse=True):
                broken.append(f"{d}: not newest first")
            changes = [e for e in entries if e["kind"] == "state"]
            for newer, older in zip(changes, changes[1:]):
                if newer["from"] != older["to"]:
                    broken.append(f"{d}: {older['from']}->{older['to']} then {newer['from']}->{newer['to']}")
                    break
            if changes and changes[0]["to"] != x["state"]:
                broken.append(f"{d}: newest change to {changes[0]['to']}, status {x['state']}")
            if any(t in r.text for t in token_values):
                leaked.append(d)
        check("history: the state changes chain and end in the status's state, newest first", not broken,
              "; ".join(broken[:5]) if broken else f"{total} entries of {len(rest)} devices")
        check("history: no token value in it", not leaked, str(leaked[:5]))
    except Exception as e:  # noqa: BLE001
        check("run", False, repr(e))
    finally:
        bridge.stop()
        sandbox.terminate()
        sandbox.wait()
        if pg_dir:
            subprocess.call([os.path.join(REPO, "scripts/pg-test-server.sh"), "stop", pg_dir])
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    if failed == 0:
        shutil.rmtree(work, ignore_errors=True)
    else:
        log(f"logs kept in {work}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
