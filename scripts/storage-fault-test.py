#!/usr/bin/env python3
"""Storage faults under load, on the real binary: the database fails, the bridge answers honestly and resumes.

    python3 scripts/storage-fault-test.py [--binary PATH] [--case NAME ...]

Cases (all by default):
  sqlite-full      the SQLite file on a 64 MB tmpfs; a filler file takes the rest until writes fail, then it is
                   removed (needs mount, as root in CI; the case says so and fails when it cannot mount)
  sqlite-readonly  the SQLite file and its WAL made immutable for 3 s (chattr +i: writes fail even for root),
                   then writable again
  pg-stop          PostgreSQL stopped for 3 s under load (fast shutdown), then started again
  pg-restart       PostgreSQL restarted under load (pg_ctl restart -m fast)

Each case runs `pushbridge serve` (storage.timeoutMs 1000, the default lease of 10 s, renewed by the heartbeat) against a standalone
`pushbridge sandbox`, with 4 writers sending device starts (a new device, or a new token for one of theirs) and a
poller reading /ready every 100 ms. The writers stop when storage is back. Checks per case:

  no-500           no answer was a 5xx other than 503, and no request hung past the client's 10 s
  503              writes refused while storage failed were 503 problem+json `storage-unavailable` with Retry-After
                   (at least one, except for pg-restart, where a refusal is possible but not certain)
  ready            /ready answered 503 naming storage while it failed, every probe within a second, then 200
  registered       every device that got a 2xx ends registered, with the last token that got a 2xx (or a later one
                   whose write timed out, which may have been stored) at the sandbox
  resume           every device accepted until storage came back (when the writers stop) is registered within 5 s
                   of it
  no-token-in-logs the bridge logged its storage failures, and no token appears in its log

Prints one line of figures per case (the README's reliability table) and `N passed, M failed`; exits non-zero when
any check fails. PostgreSQL comes from scripts/pg-test-server.sh (installed from Debian's packages when missing).
"""
import argparse
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from testlib import APP, REPO, Bridge, free_port, log, requests, wait_http

PROBLEM = "urn:pushbridge:problem:storage-unavailable"
RESUME_BOUND_S = 5.0


class Load:
    """4 writers and a /ready poller against one bridge; every answer recorded with its time."""

    def __init__(self, base, prefix):
        self.base, self.prefix = base, prefix
        self.stop_flag = threading.Event()  # the writers
        self.stop_polling = threading.Event()
        self.lock = threading.Lock()
        self.answers = []  # (t, status, problem type, retry-after, timed_out_detail)
        self.history = {}  # device -> [(token, outcome)] outcome: ok | refused | maybe
        self.hung = 0
        self.ready = []  # (t, status, seconds, storage check)
        self.threads = []

    def writer(self, k):
        session = requests.Session()
        mine = []
        n = 0
        while not self.stop_flag.is_set():
            n += 1
            # Every third write rotates the token of one of this writer's devices; the others start a new one.
            if mine and n % 3 == 0:
                device = mine[n % len(mine)]
            else:
                device = f"{self.prefix}-w{k}-{n}"
            token = f"f{k}x{n}:APA91b{os.urandom(24).hex()}"
            outcome = "maybe"
            try:
                r = session.put(f"{self.base}/v1/apps/{APP}/devices/{device}", json={"provider": "fcm", "token": token},
                                timeout=10)
                body = {}
                if r.headers.get("content-type", "").startswith("application/problem+json"):
                    body = r.json()
                with self.lock:
                    self.answers.append((time.monotonic(), r.status_code, body.get("type"), r.headers.get("retry-after"),
                                         "may still be stored" in body.get("detail", "")))
                if 200 <= r.status_code < 300:
                    outcome = "ok"
                    if device not in mine:
                        mine.append(device)
                elif r.status_code == 503 and "may still be stored" not in body.get("detail", ""):
                    outcome = "refused"
            except requests.RequestException:
                with self.lock:
                    self.hung += 1
            with self.lock:
                self.history.setdefault(device, []).append((token, outcome))
            if outcome != "ok":
                time.sleep(0.2)  # a client backs off after a refusal (Retry-After is 2 s; shorter keeps the load up)
            else:
                time.sleep(0.01)

    def poller(self):
        session = requests.Session()
        while not self.stop_polling.is_set():
            started = time.monotonic()
            try:
                r = session.get(f"{self.base}/ready", timeout=5)
                storage = (r.json().get("checks") or {}).get("storage", "")
                with self.lock:
                    self.ready.append((started, r.status_code, time.monotonic() - started, storage))
            except requests.RequestException:
                with self.lock:
                    self.ready.append((started, 0, time.monotonic() - started, "no answer"))
            time.sleep(0.1)

    def start(self):
        self.threads = [threading.Thread(target=self.writer, args=(k,), daemon=True) for k in range(4)]
        self.threads.append(threading.Thread(target=self.poller, daemon=True))
        for t in self.threads:
            t.start()

    def stop_writers(self):
        self.stop_flag.set()
        for t in self.threads[:-1]:
            t.join(15)

    def stop_poller(self):
        self.stop_polling.set()
        self.threads[-1].join(15)


def expected_tokens(history):
    """The tokens a device may end with: the last one that got a 2xx, or any later one whose write may have
    been stored (a storage timeout or no answer)."""
    allowed, last_ok = set(), None
    for token, outcome in history:
        if outcome == "ok":
            last_ok, allowed = token, set()
        elif outcome == "maybe":
            allowed.add(token)
    return ({last_ok} if last_ok else set()) | allowed, last_ok is not None


def run_case(name, args, work, pg):
    """Runs one case; returns (checks, figures)."""
    case_dir = os.path.join(work, name)
    os.makedirs(case_dir)
    data_dir = os.path.join(case_dir, "data")
    os.makedirs(data_dir)
    mounted = False
    if name == "sqlite-full":
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", data_dir], capture_output=True, text=True)
        if r.returncode != 0:
            log(f"{name}: cannot mount a tmpfs here ({r.stderr.strip()}); this case needs root")
            return {"setup (mount a tmpfs)": False}, f"{name}: not run, no tmpfs"
        mounted = True
    if name.startswith("pg-"):
        url = pg["url"] + f"?schema=fault_{name.replace('-', '_')}_{os.getpid()}"
        storage = f'url: "{url}", encryptionKey: "{base64.b64encode(os.urandom(32)).decode()}"'
    else:
        storage = f'url: "sqlite://{data_dir}/bridge.sqlite"'
    sb_port, br_port = free_port(), free_port()
    config = os.path.join(case_dir, "bridge.yaml")
    with open(config, "w") as f:
        f.write(f"""http: {{ host: 127.0.0.1, port: {br_port} }}
storage: {{ {storage}, timeoutMs: 1000 }}
emarsys:
  sandbox: false
  clientServiceURL: http://127.0.0.1:{sb_port}
  eventServiceURL: http://127.0.0.1:{sb_port}
  requestTimeoutSeconds: 5
  retry: {{ initialDelayMs: 50, maxDelayMs: 500 }}
providers: {{ directory: "" }}
apps:
  - code: {APP}
""")
    sandbox = subprocess.Popen([args.binary, "sandbox", "--port", str(sb_port), "--host", "127.0.0.1"], cwd=case_dir,
                               stdout=open(os.path.join(case_dir, "sandbox.log"), "wb"), stderr=subprocess.STDOUT)
    bridge = Bridge(args.binary, config, br_port, case_dir)
    base, sb = f"http://127.0.0.1:{br_port}", f"http://127.0.0.1:{sb_port}"
    checks, figures = {}, ""
    filler = os.path.join(data_dir, "filler")
    db_files = [os.path.join(data_dir, n) for n in ("bridge.sqlite", "bridge.sqlite-wal")]
    try:
        assert wait_http(f"{sb}/_sandbox/health", 30, sandbox), "sandbox did not start"
        bridge.start()
        assert wait_http(f"{base}/ready", 30, bridge.proc), "bridge not ready"
        load = Load(base, name)
        load.start()
        time.sleep(2)

        fault_at = time.monotonic()
        if name == "sqlite-full":
            # Take every free byte, then keep the writers going until storage refuses them (a WAL that still has
            # room takes writes for a while).
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True)
            end = time.monotonic() + 60
            while time.monotonic() < end and not any(a[1] == 503 and a[0] > fault_at for a in list(load.answers)):
                time.sleep(0.1)
            time.sleep(3)
            os.remove(filler)
        elif name == "sqlite-readonly":
            subprocess.run(["chattr", "+i"] + [p for p in db_files if os.path.exists(p)], check=True)
            time.sleep(3)
            subprocess.run(["chattr", "-i"] + [p for p in db_files if os.path.exists(p)], check=True)
        elif name == "pg-stop":
            subprocess.run([pg["script"], "halt", pg["dir"]], check=True, capture_output=True)
            time.sleep(3)
            subprocess.run([pg["script"], "resume", pg["dir"]], check=True, capture_output=True)
        elif name == "pg-restart":
            subprocess.run([pg["script"], "restart", pg["dir"]], check=True, capture_output=True)
        recovered_at = time.monotonic()
        load.stop_flag.set()  # the writers stop (joined below): what resumes is what was accepted until now

        # Resume: every device accepted until now is registered within RESUME_BOUND_S of the recovery.
        accepted = {d for d, h in load.history.items() if expected_tokens(h)[1]}
        resume_s, pending = None, accepted
        deadline = recovered_at + 60
        while time.monotonic() < deadline:
            states = {}
            cursor = None
            while True:
                q = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
                page = requests.get(f"{base}/v1/apps/{APP}/devices", params=q, timeout=10).json()
                for d in page["devices"]:
                    states[d["deviceId"]] = (d["state"], d["pending"])
                cursor = page.get("nextCursor")
                if not cursor:
                    break
            pending = {d for d in accepted if states.get(d) != ("registered", 0)}
            if not pending:
                resume_s = time.monotonic() - recovered_at
                break
            time.sleep(0.1)
        load.stop_writers()
        accepted |= {d for d, h in load.history.items() if expected_tokens(h)[1]}  # answers that came in late
        checks["resume"] = resume_s is not None and resume_s <= RESUME_BOUND_S
        if pending and os.environ.get("PB_FAULT_PAUSE"):
            log(f"{name}: pausing for inspection: bridge {base}, sandbox {sb}, pg {pg and pg['url']}")
            time.sleep(float(os.environ["PB_FAULT_PAUSE"]))
        for device in sorted(pending)[:3]:  # what the stuck ones say (hashes and states only)
            log(f"{name}: still pending: {requests.get(f'{base}/v1/apps/{APP}/devices/{device}', timeout=10).text[:600]}")
        if pending and pg:
            psql = os.path.join(open(os.path.join(pg["dir"], "bin")).read().strip(), "psql")
            ids = ",".join(f"'{d}'" for d in sorted(pending)[:3])
            schema = url.split("schema=")[1]
            out = subprocess.run(["runuser", "-u", "postgres", "--", psql, pg["url"], "-c",
                                  f"SELECT device_id, state, pending, due_at, lease_owner, lease_until, now() FROM {schema}.devices"
                                  f" WHERE device_id IN ({ids})"], capture_output=True, text=True)
            log(f"{name}: rows: {out.stdout}{out.stderr}")
        # Writes after the recovery go through.
        after = [requests.put(f"{base}/v1/apps/{APP}/devices/{name}-after-{i}",
                              json={"provider": "fcm", "token": f"a{i}:APA91b{os.urandom(24).hex()}"}, timeout=10).status_code
                 for i in range(20)]

        # /ready 200 again (a failure keeps it 503 for 5 s), then the poller stops.
        ready_again = wait_http(f"{base}/ready", 15)
        time.sleep(0.3)
        load.stop_poller()

        # Registered with the right token, at the sandbox.
        wrong = []
        for device in accepted:
            tokens, _ = expected_tokens(load.history[device])
            status = requests.get(f"{base}/v1/apps/{APP}/devices/{device}", timeout=10).json()
            view = requests.get(f"{sb}/_sandbox/clients/{status.get('clientId')}", timeout=10)
            if status.get("state") != "registered" or view.status_code != 200 or view.json().get("pushToken") not in tokens:
                wrong.append(device)

        answers = load.answers
        bad = [a for a in answers if a[1] >= 500 and a[1] != 503]
        refused = [a for a in answers if a[1] == 503]
        honest = all(a[2] == PROBLEM and a[3] for a in refused)
        checks["no-500"] = not bad and load.hung == 0
        checks["503"] = honest and (bool(refused) or name == "pg-restart")
        # While storage failed, and up to 2 s after (a restart can fall between two probes; the bridge keeps /ready
        # at 503 for 5 s after a failed operation).
        during = [r for r in load.ready if fault_at <= r[0] <= recovered_at + 2]
        slow = [r for r in load.ready if r[2] > 1.0]
        saw_503 = any(r[1] == 503 and r[3] != "ok" for r in during)
        checks["ready"] = saw_503 and not slow and ready_again
        checks["registered"] = not wrong and all(s == 202 for s in after)
        # The logs name what failed, never a token (the storage errors of both drivers are logged).
        logs = "".join(open(os.path.join(case_dir, f), errors="replace").read() for f in os.listdir(case_dir) if f.endswith(".log"))
        leaked = [t for h in load.history.values() for t, _ in h if t.split(":APA91b")[1] in logs]
        checks["no-token-in-logs"] = not leaked and "storage failed; answering 503" in logs if refused else not leaked
        ok = sum(1 for a in answers if 200 <= a[1] < 300)
        figures = (f"{name}: {len(answers)} writes, {ok} accepted, {len(refused)} refused with 503"
                   f" ({sum(1 for a in refused if a[4])} of them possibly stored), {len(bad)} other 5xx, {load.hung} hung;"
                   f" fault {recovered_at - fault_at:.1f} s; /ready 503 {sum(1 for r in during if r[1] == 503)} of"
                   f" {len(during)} probes, slowest probe {max((r[2] for r in load.ready), default=0):.2f} s;"
                   f" {len(accepted)} devices accepted, all registered {resume_s:.1f} s after recovery"
                   if resume_s is not None else
                   f"{name}: {len(pending)} of {len(accepted)} accepted devices still not registered 60 s after recovery")
        if wrong:
            figures += f"; {len(wrong)} devices without their token at the sandbox (e.g. {sorted(wrong)[:3]})"
        if slow:
            figures += f"; {len(slow)} /ready probes over 1 s"
        if bad:
            figures += f"; other 5xx: {sorted(set(a[1] for a in bad))}"
    finally:
        bridge.stop()
        sandbox.kill()
        sandbox.wait()
        if name == "sqlite-readonly":
            subprocess.run(["chattr", "-i"] + [p for p in db_files if os.path.exists(p)], capture_output=True)
        if mounted:
            subprocess.run(["umount", "-l", data_dir], capture_output=True)
    return checks, figures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(REPO, ".build/debug/pushbridge"))
    ap.add_argument("--case", action="append", choices=["sqlite-full", "sqlite-readonly", "pg-stop", "pg-restart"])
    args = ap.parse_args()
    cases = args.case or ["sqlite-full", "sqlite-readonly", "pg-stop", "pg-restart"]
    work = tempfile.mkdtemp(prefix="pb-storage-fault-")
    pg = None
    results, lines = [], []
    try:
        if any(c.startswith("pg-") for c in cases):
            script = os.path.join(REPO, "scripts/pg-test-server.sh")
            pg_dir = os.path.join(work, "pg")
            url = subprocess.check_output([script, "start", pg_dir], text=True).strip()
            pg = {"script": script, "dir": pg_dir, "url": url}
        for name in cases:
            log(f"{name}: starting")
            checks, figures = run_case(name, args, work, pg)
            lines.append(figures)
            log(figures)
            for check, ok in checks.items():
                results.append((f"{name} {check}", ok))
                log(f"{'PASS' if ok else 'FAIL'} {name} {check}")
    finally:
        if pg:
            subprocess.run([pg["script"], "stop", pg["dir"]], capture_output=True)
    failed = [n for n, ok in results if not ok]
    print("\n".join(lines))
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        print(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
