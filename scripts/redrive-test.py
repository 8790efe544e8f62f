#!/usr/bin/env python3
"""Re-drive under the rate limit: 10,000 failed devices retried with `meRequestsPerSecond: 200`.

Starts the ME sandbox and the bridge (the real binary, SQLite on a temp file). With the sandbox refusing every
push-token PUT (400), 10,000 devices are registered: each ends `failed` at `push-token`. The fault is lifted and
the bridge restarted with `apps[].meRequestsPerSecond: 200`; `pushbridge retry` re-drives the app. Then, against the
sandbox's request log:

  retried     the re-drive answered 202 with every failed device
  registered  every device ends registered, its token at its sandbox client, within the bound
  rate        the sandbox never saw more than 200 requests in any one second from the re-drive on
  violations  the sandbox recorded no invariant violation

Ends with `N passed, M failed`; exits non-zero when any check fails.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime

from testlib import APP, REPO, Bridge, free_port, log, requests, wait_http

RATE = 200


def config_text(work, br_port, sb_base, rate):
    limit = f"\n    meRequestsPerSecond: {rate}" if rate else ""
    return f"""http: {{ host: 127.0.0.1, port: {br_port} }}
storage: {{ url: "sqlite://{work}/bridge.sqlite" }}
emarsys:
  sandbox: false
  clientServiceURL: {sb_base}
  eventServiceURL: {sb_base}
  requestTimeoutSeconds: 10
  maxConcurrentRequests: 64
  retry: {{ initialDelayMs: 50, maxDelayMs: 1000 }}
providers: {{ directory: "" }}
apps:
  - code: {APP}{limit}
"""


def most_in_any_second(times):
    times = sorted(times)
    most, first = 0, 0
    for i, t in enumerate(times):
        while t - times[first] >= 1.0:
            first += 1
        most = max(most, i - first + 1)
    return most


def stats(base):
    return requests.get(f"{base}/v1/apps/{APP}/stats", timeout=30).json()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(REPO, ".build/debug/pushbridge"))
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=600, help="seconds for each phase to finish")
    args = ap.parse_args()

    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        print(f"no executable at {binary}", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="pb-redrive-")
    private = os.path.join(work, "pushbridge")
    shutil.copy2(binary, private)  # a concurrent rebuild does not replace the binary under us
    sb_port, br_port = free_port(), free_port()
    sb_base, base = f"http://127.0.0.1:{sb_port}", f"http://127.0.0.1:{br_port}"
    config = os.path.join(work, "bridge.yaml")
    with open(config, "w") as f:
        f.write(config_text(work, br_port, sb_base, None))
    sandbox = subprocess.Popen([private, "sandbox", "--port", str(sb_port), "--host", "127.0.0.1"], cwd=work,
                               stdout=open(os.path.join(work, "sandbox.log"), "wb"), stderr=subprocess.STDOUT)
    bridge = Bridge(private, config, br_port, work)
    results = []
    try:
        if not wait_http(f"{sb_base}/_sandbox/requests?limit=1", 60, sandbox):
            raise RuntimeError("sandbox did not come up")
        bridge.start()

        # 1. Every device fails at its push token.
        r = requests.post(f"{sb_base}/_sandbox/faults", json={"status": 400, "method": "PUT", "path": "/push-token",
                                                              "unlimited": True}, timeout=10)
        assert r.status_code == 201, r.text
        ids = [f"rd-{n:05d}" for n in range(args.devices)]
        tokens = {i: f"{i}:APA91b" + "x" * 60 + f"{n:05d}" for n, i in enumerate(ids)}
        refused = []

        def put(chunk):
            s = requests.Session()
            for i in chunk:
                r = s.put(f"{base}/v1/apps/{APP}/devices/{i}/push-token", json={"provider": "fcm", "token": tokens[i]},
                          timeout=30)
                if r.status_code != 202:
                    refused.append((i, r.status_code))
        log(f"registering {args.devices} devices with every push-token PUT refused; workdir {work}")
        threads = [threading.Thread(target=put, args=(ids[k::args.threads],)) for k in range(args.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if refused:
            raise RuntimeError(f"{len(refused)} writes not accepted, e.g. {refused[:3]}")
        end = time.monotonic() + args.timeout
        while time.monotonic() < end and stats(base)["byState"].get("failed", 0) < args.devices:
            time.sleep(1)
        failed = stats(base)["byState"].get("failed", 0)
        log(f"{failed} devices failed")
        if failed != args.devices:
            raise RuntimeError(f"only {failed} of {args.devices} devices failed")

        # 2. The fault lifted, the bridge restarted at 200 requests per second, the app re-driven.
        requests.delete(f"{sb_base}/_sandbox/faults", timeout=10)
        bridge.stop()
        with open(config, "w") as f:
            f.write(config_text(work, br_port, sb_base, RATE))
        bridge.start()
        before = requests.get(f"{sb_base}/_sandbox/requests?limit=1", timeout=10).json()
        first_seq = before[-1]["seq"] + 1 if before else 1
        started = time.monotonic()
        retry = subprocess.run([private, "retry", "--app", APP, "--url", base, "--wait", "0"], capture_output=True,
                               text=True, timeout=60)
        log(f"pushbridge retry: {retry.stdout.strip()} {retry.stderr.strip()}")
        results.append(("retried", retry.returncode == 0 and f"re-driving {args.devices} failed devices" in retry.stdout,
                        retry.stdout.strip().splitlines()[0] if retry.stdout.strip() else retry.stderr.strip()))
        end = time.monotonic() + args.timeout
        while time.monotonic() < end and stats(base)["byState"].get("registered", 0) < args.devices:
            time.sleep(1)
        took = time.monotonic() - started
        by_state = stats(base)["byState"]
        log(f"after {took:.0f} s: {by_state}")

        # 3. Checks against the sandbox.
        results.append(("registered", by_state.get("registered", 0) == args.devices,
                        f"{by_state.get('registered', 0)}/{args.devices} registered in {took:.0f} s"))
        log_all = requests.get(f"{sb_base}/_sandbox/requests", timeout=120).json()
        redrive = [e for e in log_all if e["seq"] >= first_seq]
        times = [datetime.fromisoformat(e["at"].replace("Z", "+00:00")).timestamp() for e in redrive]
        most = most_in_any_second(times)
        puts = sum(1 for e in redrive if e["method"] == "PUT" and e["path"].endswith("/push-token") and e["status"] == 204)
        results.append(("rate", most <= RATE and puts >= args.devices,
                        f"at most {most} requests in any second (limit {RATE}); {len(redrive)} requests, {puts} push-token PUTs"))
        v = requests.get(f"{sb_base}/_sandbox/violations", timeout=60)
        count = int(v.headers.get("X-Sandbox-Violation-Count", "0"))
        results.append(("violations", count == 0, f"{count} violations" + (f", e.g. {v.json()[:2]}" if count else "")))
    except Exception as e:  # noqa: BLE001 (reported as a failed check)
        results.append(("run", False, f"{type(e).__name__}: {e}"))
    finally:
        bridge.stop()
        sandbox.terminate()
        try:
            sandbox.wait(10)
        except subprocess.TimeoutExpired:
            sandbox.kill()
    passed = sum(1 for _, ok, _ in results if ok)
    for name, ok, detail in results:
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
    print(f"{passed} passed, {len(results) - passed} failed", flush=True)
    if passed == len(results):
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"logs in {work}", flush=True)
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
