#!/usr/bin/env python3
"""A real Prometheus against a running bridge: the shipped alert rules and the Grafana dashboard's queries.

Starts `pushbridge serve` (SQLite, embedded sandbox) and Prometheus (Debian's `prometheus` package; scrape and rule
evaluation every second) with deploy/prometheus/alerts.yaml, where the backlog and transient-error alerts get
thresholds and `for` durations of seconds instead of minutes (only in this run's copy). Then:
  load        300 devices start with a token (a third log in, a third send events) and end registered
  dashboard   every query of deploy/grafana/pushbridge.json returns data ($__rate_interval as 1m)
  rules       every rule evaluates without error
  trigger     the sandbox answers 503 after 300 ms to everything and 100 more devices start, on two workers: work
              piles up, and PushbridgeBacklog and PushbridgeMETransientErrors fire
Usage: python3 scripts/prometheus-test.py [PUSHBRIDGE_BINARY]
"""
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import APP, REPO, Bridge, free_port, log, requests, wait_http  # noqa: E402

try:
    import yaml
except ImportError:  # pragma: no cover
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "pyyaml"])
    import yaml

FAST = {"PushbridgeBacklog": ("> 300", "> 2", "2s"), "PushbridgeMETransientErrors": ("> 0.2", "> 0.2", "2s")}


def live_rules(path):
    """alerts.yaml with the triggered alerts' thresholds and `for` made fit for a test of a minute."""
    doc = yaml.safe_load(open(path))
    for group in doc["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") in FAST:
                old, new, duration = FAST[rule["alert"]]
                assert old in rule["expr"], (rule["alert"], rule["expr"])
                rule["expr"] = rule["expr"].replace(old, new)
                rule["for"] = duration
    return doc


def dashboard_queries(path):
    dash = json.load(open(path))
    return [(p["title"], t["expr"].replace("$__rate_interval", "1m")) for p in dash["panels"] for t in p["targets"]]


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, ".build/debug/pushbridge")
    prometheus = shutil.which("prometheus")
    if not prometheus:
        log("FAIL prometheus is not installed (scripts/check-deploy.sh installs Debian's `prometheus` package)")
        return 1
    work = tempfile.mkdtemp(prefix="pushbridge-prometheus-")
    port, prom_port = free_port(), free_port()
    config = os.path.join(work, "pushbridge.yaml")
    with open(config, "w") as f:
        f.write(f"""http: {{ host: 127.0.0.1, port: {port} }}
storage: {{ url: "sqlite://{work}/store.sqlite" }}
emarsys: {{ sandbox: true, maxConcurrentRequests: 2, retry: {{ initialDelayMs: 200, maxDelayMs: 1000 }} }}
apps:
  - code: {APP}
    contactFieldId: 3
    meRequestsPerSecond: 1000
""")
    rules = os.path.join(work, "rules.yaml")
    yaml.safe_dump(live_rules(os.path.join(REPO, "deploy/prometheus/alerts.yaml")), open(rules, "w"), sort_keys=False)
    prom_config = os.path.join(work, "prometheus.yml")
    with open(prom_config, "w") as f:
        f.write(f"""global: {{ scrape_interval: 1s, evaluation_interval: 1s }}
rule_files: [{rules}]
scrape_configs:
  - job_name: pushbridge
    static_configs: [{{ targets: ["127.0.0.1:{port}"] }}]
""")
    bridge = Bridge(binary, config, port, work)
    prom = None
    failures = []

    def check(name, ok, detail=""):
        log(("PASS " if ok else "FAIL ") + name + (f": {detail}" if detail and not ok else ""))
        if not ok:
            failures.append(name)

    try:
        bridge.start()
        prom = subprocess.Popen(
            [prometheus, f"--config.file={prom_config}", f"--storage.tsdb.path={work}/tsdb", f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=open(os.path.join(work, "prometheus.log"), "wb"), stderr=subprocess.STDOUT)
        prom_base = f"http://127.0.0.1:{prom_port}"
        if not wait_http(f"{prom_base}/-/ready", 60, prom):
            raise RuntimeError(f"Prometheus did not come up; see {work}/prometheus.log")
        base = f"http://127.0.0.1:{port}/v1/apps/{APP}/devices"
        s = requests.Session()

        def start(i):
            token = f"tok{i}:APA91b" + "x" * 40
            r = s.put(f"{base}/p{i}", json={"provider": "fcm", "token": token}, timeout=10)
            assert r.status_code == 202, (r.status_code, r.text)
            if i % 3 == 1:
                s.put(f"{base}/p{i}/contact", json={"fieldValue": f"user{i}@example.com"}, timeout=10)
            if i % 3 == 2:
                s.post(f"{base}/p{i}/events", json={"events": [{"name": "opened"}]}, timeout=10)

        log("load: 300 devices")
        for i in range(300):
            start(i)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            by_state = s.get(f"http://127.0.0.1:{port}/v1/apps/{APP}/stats", timeout=10).json()["byState"]
            if by_state.get("registered") == 300:
                break
            time.sleep(0.5)
        check("load: 300 devices registered", by_state.get("registered") == 300, str(by_state))
        time.sleep(5)  # a few scrapes after the load

        def query(expr):
            r = requests.get(f"{prom_base}/api/v1/query", params={"query": expr}, timeout=10).json()
            return r.get("status"), r.get("data", {}).get("result", []), r.get("error")

        empty = []
        for title, expr in dashboard_queries(os.path.join(REPO, "deploy/grafana/pushbridge.json")):
            status, result, error = query(expr)
            if status != "success" or not result:
                empty.append(f"{title}: {expr} ({error or 'no data'})")
        check("dashboard: every query returns data", not empty, "; ".join(empty))

        groups = requests.get(f"{prom_base}/api/v1/rules", timeout=10).json()["data"]["groups"]
        rules_seen = [r for g in groups for r in g["rules"]]
        bad = [f"{r['name']}: {r.get('lastError')}" for r in rules_seen if r.get("health") != "ok"]
        check(f"rules: all {len(rules_seen)} evaluate without error", len(rules_seen) >= 11 and not bad, "; ".join(bad))
        firing_early = [r["name"] for r in rules_seen if r.get("state") in ("firing", "pending")]
        check("rules: nothing fires or is pending while all is well", not firing_early, str(firing_early))

        log("trigger: the sandbox answers 503 after 300 ms; 100 more devices start")
        r = s.post(f"http://127.0.0.1:{port}/sandbox/_sandbox/faults", json={"status": 503, "latencyMs": 300, "unlimited": True}, timeout=10)
        assert r.status_code in (200, 201), (r.status_code, r.text)
        for i in range(300, 400):
            start(i)
        wanted = {"PushbridgeBacklog", "PushbridgeMETransientErrors"}
        firing = set()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not wanted <= firing:
            alerts = requests.get(f"{prom_base}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
            firing = {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}
            time.sleep(1)
        check("trigger: PushbridgeBacklog and PushbridgeMETransientErrors fire", wanted <= firing, f"firing: {sorted(firing)}")
    finally:
        if prom:
            prom.terminate()
            try:
                prom.wait(10)
            except subprocess.TimeoutExpired:
                prom.kill()
        bridge.stop()
    if failures:
        log(f"prometheus-test: {len(failures)} failed; logs in {work}")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    log("prometheus-test: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
