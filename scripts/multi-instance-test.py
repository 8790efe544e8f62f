#!/usr/bin/env python3
"""Multi-instance test: two bridges on one PostgreSQL, one ME sandbox, and a SIGKILL of one bridge mid-run.

Starts a throwaway PostgreSQL (scripts/pg-test-server.sh; or uses PUSHBRIDGE_TEST_POSTGRES_URL with a schema of its
own), the sandbox (`pushbridge sandbox`), and two `pushbridge serve` processes on the same database (short lease).
Each device gets: start (token 0), rotation (token 1), login, rotation (token 2), logout. Its writes go round-robin
to both instances, in order (one client thread per device subset). When half of the writes are done, instance B is
killed with SIGKILL; writes meant for it go to A from then on. A must finish everything, taking B's devices after
their lease expires. Checks, per device at the sandbox:

  writes      every write got a 2xx
  converge    every device `registered`, pending 0 (per-device GET)
  tokens      the sandbox client's pushToken is the device's newest token; the contact is anonymous (last: logout)
  order       counts.orderViolations == 0 and the client's requests list has strictly increasing X-Request-Order
  links       anonymous links <= starts + logouts (2), plus at-least-once repeats of steps in flight on B at the kill
  puts        push-token PUTs (2xx only) <= distinct tokens (3) + logins + logouts (each re-sends the current
              token, as the SDKs do), plus the same repeats; >= 1
  repeats     all repeats beyond those bounds together <= B's maxConcurrentRequests
  takeover    B started again and killed while ME holds its requests: A (idle) took every device B held within 15 s,
              with the default lease (10 s, renewed by the heartbeat), read from PostgreSQL; under the main run's load
              the same time is reported, A's own backlog included
  restart     A killed while ME holds its requests, then started again with the same instance id: its earlier
              run's leases are given back at start, and all 30 devices it had in flight are registered within 2 s of
              its /ready

Ends with `N passed, M failed`; exits non-zero when any check fails.
"""
import argparse
import base64
import functools
import os
import random
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time

from testlib import APP, REPO, free_port, log, requests, wait_http

print = functools.partial(print, flush=True)  # noqa: A001

B64URL = string.ascii_letters + string.digits + "-_"
MAX_CONCURRENT = 16


class Instance:
    def __init__(self, name, binary, config, port, work):
        self.name, self.port, self.config = name, port, config
        self.base = f"http://127.0.0.1:{port}"
        self.alive = True
        self.log = open(os.path.join(work, f"bridge-{name}.log"), "ab")  # a restart appends
        self.proc = subprocess.Popen([binary, "serve", "--config", config], cwd=work, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def kill(self):
        self.alive = False
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.done = 0
        self.failed = []
        self.redirected = 0
        self.per_instance = {}


def device_writes(d):
    """(method, path suffix, body) in order."""
    t = d["tokens"]
    return [
        ("PUT", "", {"provider": "fcm", "token": t[0], "device": {"applicationVersion": "1.0.0"}}),
        ("PUT", "/push-token", {"provider": "fcm", "token": t[1]}),
        ("PUT", "/contact", {"fieldValue": f"user-{d['n']}@example.com"}),
        ("PUT", "/push-token", {"provider": "fcm", "token": t[2]}),
        ("DELETE", "/contact", None),
    ]


def client(devices, instances, stats, stop_evt, rng):
    sessions = [requests.Session() for _ in instances]
    pending = list(devices)
    while pending and not stop_evt.is_set():
        d = rng.choice(pending)
        k = d["next"]
        method, suffix, body = device_writes(d)[k]
        target = (d["n"] + k) % len(instances)   # round-robin over the instances, per device
        ok, outcome, end = False, None, time.monotonic() + 60
        while time.monotonic() < end and not stop_evt.is_set():
            if not instances[target].alive:
                target = next(i for i, inst in enumerate(instances) if inst.alive)
                with stats.lock:
                    stats.redirected += 1
            url = f"{instances[target].base}/v1/apps/{APP}/devices/{d['id']}{suffix}"
            try:
                r = sessions[target].request(method, url, json=body, timeout=15)
            except requests.RequestException as e:
                outcome = type(e).__name__
                sessions[target] = requests.Session()
                time.sleep(0.1)
                continue
            outcome = f"HTTP {r.status_code}"
            if 200 <= r.status_code < 300:
                ok = True
                break
            if r.status_code in (429, 500, 502, 503, 504):
                time.sleep(0.2)
                continue
            break
        with stats.lock:
            stats.done += 1
            name = instances[target].name
            stats.per_instance[name] = stats.per_instance.get(name, 0) + 1
            if not ok:
                stats.failed.append((d["id"], k, outcome))
        d["next"] = k + 1 if ok else len(device_writes(d))
        if d["next"] >= len(device_writes(d)):
            pending.remove(d)


def status_all(base, ids):
    s = requests.Session()
    out = {}
    for i in ids:
        try:
            r = s.get(f"{base}/v1/apps/{APP}/devices/{i}", timeout=10)
            out[i] = r.json() if r.status_code == 200 else {"state": f"HTTP {r.status_code}"}
        except requests.RequestException as e:
            out[i] = {"state": type(e).__name__}
    return out


def psql_count(url, where):
    """How many devices match `where`, read with psql (the URL's `schema` parameter names the schema)."""
    base, _, query = url.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
    table = f'"{params["schema"]}".devices' if "schema" in params else "devices"
    out = subprocess.check_output(["psql", base, "-tAc", f"SELECT count(*) FROM {table} WHERE {where}"], text=True, timeout=10)
    return int(out.strip())


def watch_takeover(url, t_kill, result):
    """Records how many devices with work due B held a lease on at the kill, and how long until none is B's any more
    (a device B leased whose turn had left it nothing to do has nothing to take over)."""
    held = "lease_owner LIKE 'bridge-B/%' AND due_at IS NOT NULL"
    try:
        result["held"] = psql_count(url, held)
        while time.monotonic() - t_kill < 60:
            if psql_count(url, held) == 0:
                result["seconds"] = time.monotonic() - t_kill
                return
            time.sleep(0.1)
    except (subprocess.SubprocessError, OSError, ValueError) as e:
        result["error"] = f"{type(e).__name__}: {e}"


def hold_and_kill(inst, prefix, url, sb_base, rng):
    """30 devices start on `inst` while ME holds every request for 3 s; `inst` is killed once it holds leases on some,
    and ME heals. Returns (device ids, leases held at the kill, time of the kill) or an error string."""
    s = requests.Session()
    r = s.post(f"{sb_base}/_sandbox/faults", json={"latencyMs": 3000, "unlimited": True}, timeout=10)
    if r.status_code not in (200, 201):
        return f"could not add the latency fault: HTTP {r.status_code}"
    ids = [f"{prefix}-{n:03d}" for n in range(30)]
    for n, i in enumerate(ids):
        token = f"{prefix}{n}x:APA91b" + "".join(rng.choice(B64URL) for _ in range(60))
        r = s.put(f"{inst.base}/v1/apps/{APP}/devices/{i}", json={"provider": "fcm", "token": token}, timeout=10)
        if r.status_code != 202:
            return f"PUT {i}: HTTP {r.status_code}"
    owner = f"bridge-{inst.name}/%"
    end = time.monotonic() + 10
    held = 0
    while time.monotonic() < end and held == 0:
        held = psql_count(url, f"lease_owner LIKE '{owner}' AND device_id LIKE '{prefix}-%'")
        time.sleep(0.05)
    inst.kill()
    t_kill = time.monotonic()
    s.delete(f"{sb_base}/_sandbox/faults", timeout=10)
    return ids, held, t_kill


def takeover_case(instances, binary, work, url, sb_base, rng):
    """B started again; it is killed while ME holds its requests; A, otherwise idle, must take every device B held
    within 15 s (the default lease of 10 s runs out, then A claims them)."""
    b = Instance("B", binary, instances[1].config, instances[1].port, work)
    instances[1] = b
    if not wait_http(f"{b.base}/ready", 60, b.proc):
        return ("takeover", False, "B did not become ready again")
    held = hold_and_kill(b, "takeover", url, sb_base, rng)
    if isinstance(held, str):
        return ("takeover", False, held)
    ids, n, t_kill = held
    took = None
    while time.monotonic() - t_kill < 60:
        if psql_count(url, "lease_owner LIKE 'bridge-B/%' AND due_at IS NOT NULL") == 0:
            took = time.monotonic() - t_kill
            break
        time.sleep(0.1)
    registered = all(v.get("state") == "registered" for v in status_all(instances[0].base, ids).values()) if took else False
    deadline = time.monotonic() + 30
    while took and not registered and time.monotonic() < deadline:
        time.sleep(0.2)
        registered = all(v.get("state") == "registered" for v in status_all(instances[0].base, ids).values())
    return ("takeover", took is not None and took <= 15 and n > 0 and registered,
            f"B was killed holding {n} leases; A had taken them all {took:.1f}s after the kill (bound 15 s, default lease), "
            f"and all 30 devices registered" if took is not None and registered
            else f"B held {n} leases at the kill; taken over: {took}, registered: {registered}")


def restart_case(instances, binary, work, url, sb_base, rng):
    """A alone: killed while ME holds its requests, then started again with the same configuration (instance id). It
    gives back its earlier run's leases at start: its devices must be registered within 2 s of /ready."""
    a = instances[0]
    held = hold_and_kill(a, "restart", url, sb_base, rng)
    if isinstance(held, str):
        return ("restart", False, held)
    ids, n, _ = held
    restarted = Instance("A", binary, a.config, a.port, work)
    instances[0] = restarted
    if not wait_http(f"{restarted.base}/ready", 60, restarted.proc):
        return ("restart", False, "A did not become ready again")
    t_ready = time.monotonic()
    waited = None
    while time.monotonic() - t_ready < 30:
        st = status_all(restarted.base, ids)
        if all(v.get("state") == "registered" and v.get("pending") == 0 for v in st.values()):
            waited = time.monotonic() - t_ready
            break
        time.sleep(0.05)
    return ("restart", waited is not None and waited <= 2 and n > 0,
            f"A was killed holding {n} leases; all 30 devices registered {waited:.2f}s after its /ready (bound 2 s)"
            if waited is not None else f"A held {n} leases at the kill; devices not registered 30 s after /ready")

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(REPO, ".build/debug/pushbridge"))
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--lease", type=int, default=None, help="emarsys.leaseSeconds of both instances (default: the bridge's)")
    ap.add_argument("--kill-at", type=float, default=0.5, help="fraction of writes done when B is killed")
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument("--converge-timeout", type=float, default=300)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        print(f"no executable at {binary}; build first (swift build)", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="pb-multi-")
    private = os.path.join(work, "pushbridge")
    shutil.copy2(binary, private)   # a concurrent rebuild must not replace the binary under us
    rng = random.Random(args.seed)

    pg_dir = None
    url = os.environ.get("PUSHBRIDGE_TEST_POSTGRES_URL")
    if url:
        url += ("&" if "?" in url else "?") + f"schema=multi_{os.getpid()}_{int(time.time())}"
    else:
        pg_dir = os.path.join(work, "pg")
        try:
            url = subprocess.check_output([os.path.join(REPO, "scripts/pg-test-server.sh"), "start", pg_dir],
                                          text=True).strip()
        except subprocess.CalledProcessError:
            print("PostgreSQL could not be started", file=sys.stderr)
            print("0 passed, 1 failed")
            return 1
    key = base64.b64encode(os.urandom(32)).decode()
    sb_port = free_port()
    sb_base = f"http://127.0.0.1:{sb_port}"
    sandbox = subprocess.Popen([private, "sandbox", "--port", str(sb_port), "--host", "127.0.0.1"], cwd=work,
                               stdout=open(os.path.join(work, "sandbox.log"), "wb"), stderr=subprocess.STDOUT)
    instances, results = [], []
    try:
        if not wait_http(f"{sb_base}/_sandbox/requests?limit=1", 60, sandbox):
            raise RuntimeError("sandbox did not come up")
        for name in ("A", "B"):
            port = free_port()
            config = os.path.join(work, f"bridge-{name}.yaml")
            with open(config, "w") as f:
                f.write(f"""http: {{ host: 127.0.0.1, port: {port} }}
storage: {{ url: "{url}", encryptionKey: "{key}", poolSize: 8 }}
emarsys:
  sandbox: false
  clientServiceURL: {sb_base}
  eventServiceURL: {sb_base}
  requestTimeoutSeconds: 5
  maxConcurrentRequests: {MAX_CONCURRENT}
{f"  leaseSeconds: {args.lease}" if args.lease else ""}
  retry: {{ initialDelayMs: 50, maxDelayMs: 1000 }}
instance: {{ id: bridge-{name} }}
providers: {{ directory: "" }}
log: {{ level: warning }}
apps:
  - code: {APP}
""")
            instances.append(Instance(name, private, config, port, work))
        for inst in instances:
            if not wait_http(f"{inst.base}/ready", 90, inst.proc):
                raise RuntimeError(f"instance {inst.name} did not become ready; see {inst.log.name}")
        log(f"sandbox :{sb_port}, A :{instances[0].port}, B :{instances[1].port}, PostgreSQL {url.split('@')[-1]}, "
            f"lease {args.lease or 'default'}s; {args.devices} devices x 5 writes over {args.threads} threads")

        devices = [{"n": n, "id": f"multi-{n:05d}", "next": 0,
                    "tokens": [f"d{n}x{j}:APA91b" + "".join(rng.choice(B64URL) for _ in range(60)) for j in range(3)]}
                   for n in range(args.devices)]
        total = len(devices) * 5
        stats, stop_evt = Stats(), threading.Event()
        threads = [threading.Thread(target=client, daemon=True,
                                    args=(devices[t::args.threads], instances, stats, stop_evt, random.Random(args.seed + t)))
                   for t in range(args.threads)]
        t0 = time.monotonic()
        for th in threads:
            th.start()
        kill_at = int(total * args.kill_at)
        t_kill = None
        takeover, takeover_result = None, {}
        while any(th.is_alive() for th in threads):
            with stats.lock:
                done = stats.done
            if t_kill is None and done >= kill_at:
                instances[1].kill()
                t_kill = time.monotonic()
                log(f"SIGKILL instance B after {done}/{total} writes ({t_kill - t0:.1f}s)")
                takeover = threading.Thread(target=watch_takeover, args=(url, t_kill, takeover_result), daemon=True)
                takeover.start()
            time.sleep(0.02)
        t_writes = time.monotonic()
        log(f"writes done in {t_writes - t0:.1f}s: per instance {stats.per_instance}, {stats.redirected} redirected to A "
            f"after the kill, {len(stats.failed)} failed")
        results.append(("writes", not stats.failed and t_kill is not None,
                        f"{stats.done - len(stats.failed)}/{total} writes got a 2xx"
                        + (f"; failed e.g. {stats.failed[:3]}" if stats.failed else "")
                        + ("" if t_kill else "; B was never killed")))

        a = instances[0]
        ids = [d["id"] for d in devices]
        end = time.monotonic() + args.converge_timeout
        converged_at, statuses, summary = None, {}, ""
        while time.monotonic() < end:
            try:
                r = requests.get(f"{a.base}/v1/apps/{APP}/stats", timeout=10)
                pending_total = None
                if r.status_code == 200:
                    pending_total = r.json().get("queuedIntents")
            except requests.RequestException:
                pending_total = None
            statuses = status_all(a.base, ids) if pending_total in (None, 0) else {}
            bad = {i: s for i, s in statuses.items() if s.get("state") != "registered" or s.get("pending") != 0}
            if statuses and not bad:
                converged_at = time.monotonic()
                break
            states = {}
            for s in bad.values():
                states[s.get("state")] = states.get(s.get("state"), 0) + 1
            summary = f"queued {pending_total}; not registered: {states}"
            time.sleep(1)
        if not statuses:
            statuses = status_all(a.base, ids)
        bad = {i: (s.get("state"), s.get("pending")) for i, s in statuses.items()
               if s.get("state") != "registered" or s.get("pending") != 0}
        results.append(("converge", converged_at is not None and not bad,
                        f"all {len(ids)} devices registered, pending 0, {converged_at - t_kill:.1f}s after the kill and "
                        f"{converged_at - t_writes:.1f}s after the last write" if converged_at and not bad
                        else f"not converged in {args.converge_timeout:.0f}s: {summary}; e.g. {list(bad.items())[:5]}"))

        if takeover:
            takeover.join(60)
        held, took = takeover_result.get("held"), takeover_result.get("seconds")
        log(f"under load: B's {held} devices with work due were all A's {took:.1f}s after the kill (A's own backlog included)"
            if took is not None else f"under load: B's leases were not taken over within 60 s: {takeover_result}")

        s = requests.Session()
        wrong_token, wrong_contact, order_bad, links_over, puts_over, missing = [], [], [], [], [], []
        repeats, puts_hist, links_hist = 0, {}, {}
        for d in devices:
            st = statuses.get(d["id"], {})
            cid = st.get("clientId")
            r = s.get(f"{sb_base}/_sandbox/clients/{cid}", timeout=10) if cid else None
            if r is None or r.status_code != 200:
                missing.append(d["id"])
                continue
            sc = r.json()
            c = sc["counts"]
            if sc.get("pushToken") != d["tokens"][2]:
                have = sc.get("pushToken")
                wrong_token.append((d["id"], d["tokens"].index(have) if have in d["tokens"] else have))
            if (sc.get("contact") or {}).get("kind") != "anonymous":
                wrong_contact.append((d["id"], sc.get("contact")))
            orders = [q.get("requestOrder") for q in sc.get("requests", []) if 200 <= q.get("status", 0) < 300 or True]
            increasing = all(x is not None and y is not None and y > x for x, y in zip(orders, orders[1:]))
            if c.get("orderViolations", 0) != 0 or not increasing:
                order_bad.append((d["id"], c.get("orderViolations"), orders[:12]))
            links = c.get("anonymousLinks", 0)
            puts = c.get("pushTokenPuts", 0)
            links_hist[links] = links_hist.get(links, 0) + 1
            puts_hist[puts] = puts_hist.get(puts, 0) + 1
            # Bounds: 1 start + 1 logout anonymous links; 3 tokens + 1 login + 1 logout re-sends for the PUTs.
            # One extra of each is an at-least-once repeat (a step in flight on B when it was killed).
            extra = max(0, links - 2) + max(0, puts - 5) + max(0, c.get("client", 0) - 1)
            repeats += extra
            if links < 1 or links > 3:
                links_over.append((d["id"], links))
            if puts < 1 or puts > 6:
                puts_over.append((d["id"], puts))
        results.append(("tokens", not wrong_token and not wrong_contact and not missing,
                        f"{len(devices) - len(wrong_token) - len(missing)}/{len(devices)} sandbox clients hold the newest token"
                        + (f"; wrong e.g. {wrong_token[:3]}" if wrong_token else "")
                        + (f"; contact not anonymous e.g. {wrong_contact[:2]}" if wrong_contact else "")
                        + (f"; no sandbox client for {len(missing)} e.g. {missing[:3]}" if missing else "")))
        results.append(("order", not order_bad, f"request order strictly increasing for every client"
                        if not order_bad else f"{len(order_bad)} clients out of order, e.g. {order_bad[:2]}"))
        results.append(("links", not links_over, f"anonymous links per client {dict(sorted(links_hist.items()))} "
                        f"(bound 2 = start + logout, +1 for a repeat)"
                        + (f"; over: {links_over[:5]}" if links_over else "")))
        results.append(("puts", not puts_over, f"push-token PUTs per client {dict(sorted(puts_hist.items()))} "
                        f"(bound 5 = 3 tokens + login + logout re-sends, fewer when rotations collapse; +1 for a repeat)"
                        + (f"; over: {puts_over[:5]}" if puts_over else "")))
        results.append(("repeats", repeats <= MAX_CONCURRENT,
                        f"{repeats} steps repeated beyond the bounds (at-least-once after the kill; at most "
                        f"{MAX_CONCURRENT} were in flight on B)"))
        if converged_at:
            log(f"throughput: {total} writes in {t_writes - t0:.1f}s ({total / (t_writes - t0):.0f}/s accepted); "
                f"everything at ME {converged_at - t0:.1f}s after the first write")
        results.append(takeover_case(instances, private, work, url, sb_base, rng))
        results.append(restart_case(instances, private, work, url, sb_base, rng))
    except Exception as e:  # noqa: BLE001
        results.append(("run", False, f"{type(e).__name__}: {e}"))
    finally:
        for inst in instances:
            inst.stop()
        sandbox.terminate()
        try:
            sandbox.wait(10)
        except subprocess.TimeoutExpired:
            sandbox.kill()
        if pg_dir:
            subprocess.call([os.path.join(REPO, "scripts/pg-test-server.sh"), "stop", pg_dir])
        if not args.keep and all(ok for _, ok, _ in results):
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"logs kept in {work}")

    passed = sum(1 for _, ok, _ in results if ok)
    for name, ok, detail in results:
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
