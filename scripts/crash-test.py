#!/usr/bin/env python3
"""Crash test: kill -9 under load.

Starts the ME sandbox and the bridge (the real binary, SQLite on a temp file), then sends device starts and
token rotations from concurrent clients (each device's writes from one thread, in order) while the bridge is
killed with SIGKILL at seeded random moments and restarted on the same database. Clients retry writes that
failed with a connection error; a write counts as accepted only once it got a 2xx. After the last restart and
the last write it waits until every device is registered with nothing pending, then checks against the sandbox:

  writes      every write eventually got a 2xx (none abandoned)
  converge    every device registered, pending 0, within the bound
  tokens      the sandbox client's pushToken is the newest token that got a 2xx (no accepted intent lost),
              and the status tokenHash is that token's hash
  links       anonymousLinks per client: exactly 1, or at most 1 + kills (the extra ones are at-least-once
              repeats after a crash, reported as duplicates, not failures)
  order       orderViolations == 0 for every client
  steps       no other step repeated beyond at-least-once (POST /client, start event <= 1 + kills; push-token
              PUTs <= writes + kills; no DELETE), staleClientStates <= kills, no unauthorized calls, and all
              repeated steps together <= kills x maxConcurrentRequests

Ends with `N passed, M failed`; exits non-zero when any check fails.
"""
import argparse
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
import functools

from testlib import APP, REPO, Bridge, free_port, log, requests, wait_http

print = functools.partial(print, flush=True)  # noqa: A001 (progress shows up in CI logs as it happens)

B64URL = string.ascii_letters + string.digits + "-_"
MAX_CONCURRENT = 32


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.completed = 0          # writes finished (accepted or abandoned)
        self.accepted = 0           # writes that got a 2xx
        self.abandoned = []         # (device, token, last outcome)
        self.conn_errors = 0        # attempts that failed with a connection error / timeout
        self.retried_writes = 0     # writes that needed more than one attempt
        self.non2xx = {}            # status -> count (attempts answered with a non-2xx)
        self.non2xx_examples = {}   # status -> (method, path, body text)
        self.dedup = 0              # 200 deduplicated answers


def run_client(tid, devices, base, stats, seed, write_deadline_s, stop_evt):
    """Sends each device's writes in order (start, then rotations), interleaving devices at random."""
    rng = random.Random(seed * 7919 + tid)
    session = requests.Session()
    pending = [d for d in devices]
    while pending and not stop_evt.is_set():
        d = rng.choice(pending)
        i = d["next"]
        token = d["tokens"][i]
        if i == 0:
            url = f"{base}/v1/apps/{APP}/devices/{d['id']}"
        else:
            url = f"{base}/v1/apps/{APP}/devices/{d['id']}/push-token"
        body = {"provider": "fcm", "token": token}
        end = time.monotonic() + write_deadline_s
        attempts, outcome, ok = 0, None, False
        while time.monotonic() < end and not stop_evt.is_set():
            attempts += 1
            try:
                r = session.put(url, json=body, timeout=10)
            except requests.RequestException as e:
                outcome = f"connection error: {type(e).__name__}"
                with stats.lock:
                    stats.conn_errors += 1
                session.close()
                session = requests.Session()
                time.sleep(0.05 + rng.random() * 0.15)
                continue
            outcome = f"HTTP {r.status_code}"
            if 200 <= r.status_code < 300:
                ok = True
                try:
                    dedup = bool(r.json().get("deduplicated"))
                except ValueError:
                    dedup = False
                with stats.lock:
                    stats.accepted += 1
                    stats.dedup += dedup
                break
            with stats.lock:
                stats.non2xx[r.status_code] = stats.non2xx.get(r.status_code, 0) + 1
                stats.non2xx_examples.setdefault(r.status_code, ("PUT", url, json.dumps(body), r.text[:300]))
            if r.status_code in (408, 429, 500, 502, 503, 504):
                time.sleep(0.1 + rng.random() * 0.2)
                continue
            break  # a permanent rejection: the write is not accepted
        with stats.lock:
            stats.completed += 1
            if attempts > 1:
                stats.retried_writes += 1
            if not ok:
                stats.abandoned.append((d["id"], i, outcome))
        if ok:
            d["accepted"] = i
            d["next"] = i + 1
            if d["next"] >= len(d["tokens"]):
                pending.remove(d)
        else:
            # Not accepted, but perhaps stored: this token is also a legitimate end state. Stop this device.
            d["ambiguous"] = i
            pending.remove(d)
    session.close()


def killer(bridge, stats, points, rng, kill_log, stop_evt, errors):
    for n, point in enumerate(points, 1):
        while not stop_evt.is_set():
            with stats.lock:
                done = stats.completed
            if done >= point:
                break
            time.sleep(0.005)
        if stop_evt.is_set():
            return
        time.sleep(rng.uniform(0, 0.25))
        with stats.lock:
            at = stats.completed
        bridge.kill()
        t_kill = time.monotonic()
        time.sleep(rng.uniform(0.05, 0.5))
        try:
            bridge.start()
        except RuntimeError as e:
            errors.append(str(e))
            stop_evt.set()
            return
        kill_log.append({"kill": n, "afterWrites": at, "downSeconds": round(time.monotonic() - t_kill, 2),
                         "restartedAt": time.monotonic()})
        log(f"kill #{n}: SIGKILL after {at} completed writes; back up after {time.monotonic() - t_kill:.2f}s")


def list_devices(base):
    out, cursor = {}, None
    for _ in range(1000):
        params = {"limit": 1000}
        if cursor:
            params["cursor"] = cursor
        r = requests.get(f"{base}/v1/apps/{APP}/devices", params=params, timeout=30)
        r.raise_for_status()
        page = r.json()
        for dev in page["devices"]:
            out[dev["deviceId"]] = dev
        cursor = page.get("nextCursor")
        if not cursor:
            break
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(REPO, ".build/debug/pushbridge"))
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--rotations", type=int, default=4, help="token rotations per device after its start")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument("--converge-timeout", type=float, default=180)
    ap.add_argument("--keep", action="store_true", help="keep the temp directory (logs, database)")
    args = ap.parse_args()

    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        print(f"no executable at {binary}", file=sys.stderr)
        return 2
    # Run a private copy, so a concurrent rebuild does not replace the binary under us.
    work = tempfile.mkdtemp(prefix="pb-crash-")
    private = os.path.join(work, "pushbridge")
    shutil.copy2(binary, private)

    rng = random.Random(args.seed)
    sb_port, br_port = free_port(), free_port()
    sb_base, base = f"http://127.0.0.1:{sb_port}", f"http://127.0.0.1:{br_port}"
    config = os.path.join(work, "bridge.yaml")
    with open(config, "w") as f:
        f.write(f"""http: {{ host: 127.0.0.1, port: {br_port} }}
storage: {{ url: "sqlite://{work}/bridge.sqlite" }}
emarsys:
  sandbox: false
  clientServiceURL: {sb_base}
  eventServiceURL: {sb_base}
  requestTimeoutSeconds: 5
  maxConcurrentRequests: {MAX_CONCURRENT}
  retry: {{ initialDelayMs: 50, maxDelayMs: 1000 }}
providers: {{ directory: "" }}
apps:
  - code: {APP}
""")
    log(f"seed {args.seed}; {args.devices} devices x {1 + args.rotations} writes, {args.threads} threads, "
        f"{args.kills} kills; workdir {work}")

    sandbox = subprocess.Popen([private, "sandbox", "--port", str(sb_port), "--host", "127.0.0.1"], cwd=work,
                               stdout=open(os.path.join(work, "sandbox.log"), "wb"), stderr=subprocess.STDOUT)
    bridge = Bridge(private, config, br_port, work)
    results = []  # (name, ok, detail)
    failed_early = None
    t0 = time.monotonic()
    try:
        if not wait_http(f"{sb_base}/_sandbox/requests?limit=1", 60, sandbox):
            raise RuntimeError("sandbox did not come up")
        bridge.start()

        devices = []
        for n in range(args.devices):
            tokens = [f"d{n}:APA91b" + "".join(rng.choice(B64URL) for _ in range(60))
                      for _ in range(1 + args.rotations)]
            devices.append({"id": f"crash-{n:05d}", "tokens": tokens, "next": 0, "accepted": None,
                            "ambiguous": None})
        total_writes = len(devices) * (1 + args.rotations)
        lo, hi = int(total_writes * 0.08), int(total_writes * 0.92)
        points = sorted(rng.sample(range(lo, max(hi, lo + args.kills + 1)), args.kills))
        log(f"kill points (completed writes): {points}")

        stats, stop_evt, kill_log, kill_errors = Stats(), threading.Event(), [], []
        kth = threading.Thread(target=killer, args=(bridge, stats, points, random.Random(args.seed + 1),
                                                    kill_log, stop_evt, kill_errors), daemon=True)
        clients = [threading.Thread(target=run_client,
                                    args=(t, devices[t::args.threads], base, stats, args.seed, 90, stop_evt),
                                    daemon=True) for t in range(args.threads)]
        t_writes = time.monotonic()
        kth.start()
        for c in clients:
            c.start()
        for c in clients:
            c.join(600)
        writes_done = time.monotonic()
        # All writes are done; the remaining kill points (if any: they were not reached) are not executed.
        stop_evt.set()
        kth.join(120)
        if kill_errors:
            raise RuntimeError("; ".join(kill_errors))
        kills = len(kill_log)
        last_restart = kill_log[-1]["restartedAt"] if kill_log else t_writes
        log(f"writes done in {writes_done - t_writes:.1f}s: {stats.accepted} accepted "
            f"({stats.dedup} deduplicated), {len(stats.abandoned)} abandoned, {stats.conn_errors} connection "
            f"errors, {stats.retried_writes} writes retried, non-2xx answers {stats.non2xx or 'none'}")

        # 1. every write accepted
        results.append(("writes", not stats.abandoned and kills == args.kills,
                        f"{stats.accepted}/{total_writes} writes accepted; kills executed {kills}/{args.kills}"
                        + (f"; abandoned e.g. {stats.abandoned[:3]}" if stats.abandoned else "")))
        for st, ex in sorted(stats.non2xx_examples.items()):
            log(f"  non-2xx {st} example: {ex[0]} {ex[1]} {ex[2]} -> {ex[3]}")

        # 2. converge
        want = {d["id"]: d for d in devices if d["accepted"] is not None or d["ambiguous"] is not None}
        end = time.monotonic() + args.converge_timeout
        converged_at, last_summary, listing = None, "", {}
        while time.monotonic() < end:
            try:
                listing = list_devices(base)
            except (requests.RequestException, ValueError, KeyError) as e:
                last_summary = f"listing failed: {e}"
                time.sleep(1)
                continue
            not_done = [i for i in want if i not in listing or listing[i]["state"] != "registered"
                        or listing[i]["pending"] != 0]
            if not not_done:
                converged_at = time.monotonic()
                break
            states = {}
            for i in not_done:
                s = listing[i]["state"] if i in listing else "missing"
                states[s] = states.get(s, 0) + 1
            last_summary = f"{len(not_done)} not registered: {states}"
            time.sleep(1)
        # Per-device GET is the source of truth (the listing could be wrong itself).
        status = {}
        for i in want:
            r = requests.get(f"{base}/v1/apps/{APP}/devices/{i}", timeout=10)
            status[i] = r.json() if r.status_code == 200 else {"state": f"HTTP {r.status_code}", "pending": None}
        not_reg = {i: (s.get("state"), s.get("pending")) for i, s in status.items()
                   if s.get("state") != "registered" or s.get("pending") != 0}
        conv_s = (converged_at - last_restart) if converged_at else None
        results.append(("converge", converged_at is not None and not not_reg,
                        (f"all {len(want)} devices registered, pending 0: {conv_s:.1f}s after the last restart, "
                         f"{converged_at - writes_done:.1f}s after the last write" if converged_at and not not_reg
                         else f"not converged within {args.converge_timeout:.0f}s: {last_summary}; "
                              f"per-device GET disagrees on {len(not_reg)}: {list(not_reg.items())[:5]}")))
        if listing and converged_at:
            mismatch = [i for i in want if i in listing and listing[i].get("tokenHash") != status[i].get("tokenHash")]
            if mismatch:
                log(f"  note: listing and GET disagree on tokenHash for {len(mismatch)} devices")

        # 3. tokens at the sandbox; status tokenHash
        hashes = {}
        s = requests.Session()
        for d in want.values():
            for i in {d["accepted"], d["ambiguous"]} - {None}:
                r = s.post(f"{base}/v1/tokens/normalize", json={"provider": "fcm", "token": d["tokens"][i]}, timeout=10)
                hashes[d["tokens"][i]] = r.json().get("tokenHash") if r.status_code == 200 else None
        sandbox_clients, lost, hash_bad, fetch_err = {}, [], [], []
        for i, d in want.items():
            st = status[i]
            cid = st.get("clientId")
            if not cid:
                lost.append((i, "no device at the bridge", st.get("state")))
                continue
            r = s.get(f"{sb_base}/_sandbox/clients/{cid}", timeout=10)
            if r.status_code != 200:
                lost.append((i, f"sandbox has no client {cid} (HTTP {r.status_code})", None))
                continue
            sc = r.json()
            sandbox_clients[i] = sc
            allowed = [d["tokens"][k] for k in (d["accepted"], d["ambiguous"]) if k is not None]
            if sc.get("pushToken") not in allowed:
                have = sc.get("pushToken")
                idx = d["tokens"].index(have) if have in d["tokens"] else None
                lost.append((i, f"sandbox pushToken is write #{idx} (newest accepted #{d['accepted']})", cid))
            elif st.get("tokenHash") != hashes.get(sc.get("pushToken")):
                hash_bad.append((i, st.get("tokenHash"), hashes.get(sc.get("pushToken"))))
        results.append(("tokens", not lost and not hash_bad,
                        f"{len(want) - len(lost)}/{len(want)} devices hold the newest accepted token at ME; "
                        f"lost {len(lost)}" + (f" e.g. {lost[:3]}" if lost else "")
                        + (f"; status tokenHash wrong on {len(hash_bad)} e.g. {hash_bad[:2]}" if hash_bad else "")))

        # 4. anonymous links, 5. order, 6. other steps
        dup_links, too_many_links, order_bad, steps_bad, client_repeats, event_repeats = 0, [], [], [], 0, 0
        stale = 0
        for i, sc in sandbox_clients.items():
            c = sc["counts"]
            a = c.get("anonymousLinks", 0)
            if a > 1:
                dup_links += a - 1
            if a < 1 or a > 1 + kills:
                too_many_links.append((i, a))
            if c.get("orderViolations", 0) != 0:
                order_bad.append((i, c.get("orderViolations")))
            client_repeats += max(0, c.get("client", 0) - 1)
            event_repeats += max(0, c.get("eventRequests", 0) - 1)
            stale += c.get("staleClientStates", 0)
            # A crash between ME's answer and the commit loses that answer's X-Client-State, so the next request
            # echoes the previous one: at most one stale state per kill, like the other at-least-once repeats.
            if (c.get("client", 0) > 1 + kills or c.get("client", 0) < 1 or c.get("eventRequests", 0) > 1 + kills
                    or c.get("pushTokenPuts", 0) > 1 + args.rotations + kills or c.get("pushTokenPuts", 0) < 1
                    or c.get("pushTokenDeletes", 0) or c.get("unauthorized", 0) or c.get("identifiedLinks", 0)
                    or c.get("staleClientStates", 0) > kills):
                steps_bad.append((i, c))
        results.append(("links", not too_many_links,
                        f"{dup_links} duplicate anonymous links (at-least-once repeats after {kills} kills)"
                        + (f"; clients outside 1..{1 + kills}: {too_many_links[:5]}" if too_many_links else "")))
        results.append(("order", not order_bad and len(sandbox_clients) == len(want),
                        f"orderViolations 0 on {len(sandbox_clients) - len(order_bad)}/{len(want)} clients"
                        + (f"; e.g. {order_bad[:5]}" if order_bad else "")))
        # Each kill can cut at most maxConcurrentRequests (32) steps between ME's answer and the commit.
        repeats = dup_links + client_repeats + event_repeats
        if repeats > kills * MAX_CONCURRENT:
            steps_bad.append(("total", f"{repeats} repeated steps > {kills} kills x {MAX_CONCURRENT} in flight"))
        results.append(("steps", not steps_bad,
                        f"repeats: POST /client {client_repeats}, start event {event_repeats}; stale X-Client-State {stale}"
                        + (f"; bad counts on {len(steps_bad)} clients, e.g. {steps_bad[:2]}" if steps_bad else "")))

        # What ME saw for a few clients with repeated steps (to tell crash repeats from real double sends).
        shown = 0
        for i, sc in sandbox_clients.items():
            c = sc["counts"]
            if c.get("anonymousLinks", 0) > 1 or c.get("client", 0) > 1 or c.get("eventRequests", 0) > 1:
                if shown == 0:
                    print("clients with repeated steps (first 4): method path status requestOrder")
                shown += 1
                if shown <= 4:
                    seq = ", ".join(f"{q['method']} {q['path'].rsplit('/client', 1)[-1] or '/client'} {q['status']}"
                                    f" @{q.get('at', '')[11:19]}" for q in sc.get("requests", []))
                    print(f"  {i} {sc['clientId']}: {seq}")
        print(f"  kills at: " + ", ".join(time.strftime('%H:%M:%S', time.gmtime(time.time() - (time.monotonic() - k['restartedAt']) - k['downSeconds'])) for k in kill_log))
        accepted_intents = stats.accepted
        print()
        print("figures:")
        print(f"  intents accepted        {accepted_intents} of {total_writes} writes "
              f"({stats.dedup} deduplicated, {stats.retried_writes} needed a retry)")
        print(f"  intents lost            {len(lost)} devices")
        print(f"  duplicate anon. links   {dup_links} (POST /client repeats {client_repeats}, "
              f"start event repeats {event_repeats}, stale X-Client-State {stale})")
        print(f"  kills                   {kills}: " + ", ".join(f"after {k['afterWrites']} writes" for k in kill_log))
        print(f"  converge after restart  " + (f"{conv_s:.1f}s" if conv_s is not None else "did not converge"))
        print(f"  write phase             {writes_done - t_writes:.1f}s; total {time.monotonic() - t0:.1f}s")
    except Exception as e:  # infrastructure failure: counts as a failed run
        failed_early = f"{type(e).__name__}: {e}"
    finally:
        bridge.stop()
        sandbox.terminate()
        try:
            sandbox.wait(10)
        except subprocess.TimeoutExpired:
            sandbox.kill()

    print()
    for name, ok, detail in results:
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")
    if failed_early:
        print(f"FAIL run: {failed_early}")
        results.append(("run", False, failed_early))
    passed = sum(1 for r in results if r[1])
    failed = len(results) - passed
    if failed or args.keep:
        print(f"logs and database kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
