#!/usr/bin/env python3
"""A real browser against the sandbox: headless Chromium loads a page from another origin, which runs the web push
SDK's call sequence with `fetch` (the requests `web-sdk-requests.json` recorded, in order) against `pushbridge
sandbox`. Every call must succeed through CORS, with the answers the SDK reads (X-Client-State, contact tokens)
readable by the page.

    python3 scripts/browser-test.py [PUSHBRIDGE_BINARY]    (default: .build/debug/pushbridge)

Chromium is Debian's `chromium` package, installed with apt when missing. The page is served by this script on
127.0.0.1:<port A>, the sandbox listens on 127.0.0.1:<port B>: two origins, so every call with the SDK's headers
is preflighted. The page posts its results back to this script.
"""
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from testlib import APP, REPO, free_port, log, requests, wait_http

# The web SDK's calls (`web-sdk-requests.json`, steps B1-B9): method, path below the client service, body, and
# what the SDK reads from the answer.
PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>pushbridge sandbox from a browser</title></head>
<body><pre id="out">running</pre>
<script>
const ME = "__ME__", CODE = "__APP__", REPORT = "/result";
const clientId = CODE + "_" + crypto.randomUUID();
let order = 0, clientState = null, contactToken = null, refreshToken = null;
const results = [];

async function call(name, method, path, body, opts = {}) {
  const headers = {"Content-Type": "application/json", "X-Client-Id": clientId, "X-Request-Order": String(order++)};
  if (clientState) headers["X-Client-State"] = clientState;
  if (opts.contactToken && contactToken) headers["X-Contact-Token"] = contactToken;
  const entry = {name, method, path};
  try {
    const response = await fetch(ME + path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
    entry.status = response.status;
    const state = response.headers.get("X-Client-State");
    entry.clientState = state !== null;
    if (state) clientState = state;
    const text = await response.text();
    if (text) {
      const json = JSON.parse(text);
      if (json.contactToken) { contactToken = json.contactToken; entry.contactToken = true; }
      if (json.refreshToken) { refreshToken = json.refreshToken; entry.refreshToken = true; }
    }
    if (opts.expectContactField !== undefined && state) {
      const payload = JSON.parse(atob(state.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
      entry.contactField = payload.contactField;
    }
  } catch (error) {
    entry.error = String(error);
  }
  results.push(entry);
  return entry;
}

async function run() {
  const base = "/v3/domains/" + CODE + "/client";
  const info = {platform: "chrome", applicationVersion: "0.0.0", deviceModel: navigator.userAgent,
    osVersion: "120.0.0.0", sdkVersion: "4.0.0", language: navigator.language || "en-US", timezone: "+5.530"};
  await call("storeClientDetails", "POST", base, info);
  await call("linkAnonymous", "POST", base + "/contact?anonymous=true", {}, {contactToken: true});
  const token = JSON.stringify({endpoint: "https://fcm.googleapis.com/fcm/send/browser-test-" + clientId,
    expirationTime: null, keys: {p256dh: "BGHiTjcwVlCek9VidALxT", auth: "c2VjcmV0"}});
  await call("registerPushToken", "PUT", base + "/push-token", {pushToken: token}, {contactToken: true});
  const event = (name, attributes) => ({dnd: true, events: [{type: "custom", name, timestamp: new Date().toISOString(), attributes}],
    clicks: [], viewedMessages: []});
  await call("customEvent", "POST", "/v3/apps/" + CODE + "/client/events", event("browser:custom", {count: 3, source: "browser-test"}), {contactToken: true});
  await call("login", "POST", base + "/contact", {contactFieldId: 3, contactFieldValue: "browser.test@example.com", contactFieldEncrypted: false},
    {expectContactField: true});
  await call("generateAccessToken", "POST", base + "/contact-token", {refreshToken});
  await call("customEventAfterLogin", "POST", base + "/events", event("browser:after-login", {step: "6"}), {contactToken: true});
  await call("removePushToken", "DELETE", base + "/push-token", {}, {contactToken: true});
  await call("logout", "POST", base + "/contact?anonymous=true", {}, {contactToken: true, expectContactField: true});
  document.getElementById("out").textContent = JSON.stringify(results, null, 1);
  await fetch(REPORT, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({clientId, results})});
}
run().catch(error => fetch(REPORT, {method: "POST", body: JSON.stringify({error: String(error), results})}));
</script></body></html>
"""

# What each call must answer for the SDK to go on.
EXPECTED = {
    "storeClientDetails": 204, "linkAnonymous": 200, "registerPushToken": 204, "customEvent": 204, "login": 200,
    "generateAccessToken": 200, "customEventAfterLogin": 204, "removePushToken": 204, "logout": 200,
}


def chromium():
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    log("installing Debian's chromium package")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.check_call(sudo + ["apt-get", "update", "-qq"])
    subprocess.check_call(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, stdout=subprocess.DEVNULL)
    return shutil.which("chromium")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, ".build/debug/pushbridge")
    browser = chromium()
    work = tempfile.mkdtemp(prefix="pushbridge-browser-")
    sandbox_port, page_port = free_port(), free_port()
    me = f"http://127.0.0.1:{sandbox_port}"
    page = PAGE.replace("__ME__", me).replace("__APP__", APP).encode()
    reported = {}
    done = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            reported.update(json.loads(self.rfile.read(length) or b"{}"))
            self.send_response(204)
            self.end_headers()
            done.set()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", page_port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    logs = open(os.path.join(work, "sandbox.log"), "w")
    sandbox = subprocess.Popen([binary, "sandbox", "--port", str(sandbox_port)], stdout=logs, stderr=logs)
    chrome = None
    failures = []
    try:
        if not wait_http(f"{me}/_sandbox/health", 30, sandbox):
            raise SystemExit("the sandbox did not start")
        log(f"sandbox on {me}, page on http://127.0.0.1:{page_port}/, browser {browser}")
        chrome_log = open(os.path.join(work, "chromium.log"), "w")
        chrome = subprocess.Popen([
            browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            f"--user-data-dir={os.path.join(work, 'profile')}", f"http://127.0.0.1:{page_port}/",
        ], stdout=chrome_log, stderr=chrome_log)
        if not done.wait(90):
            raise SystemExit("the page reported nothing within 90 s (see " + work + "/chromium.log)")
        if "error" in reported:
            failures.append(f"the page failed: {reported['error']}")
        results = {r["name"]: r for r in reported.get("results", [])}
        for name, status in EXPECTED.items():
            r = results.get(name)
            if r is None:
                failures.append(f"{name}: not called")
            elif r.get("error") or r.get("status") != status:
                failures.append(f"{name}: {r.get('error') or r.get('status')} (expected {status}) {r}")
            elif not r.get("clientState"):
                failures.append(f"{name}: X-Client-State not readable by the page (Access-Control-Expose-Headers)")
            else:
                print(f"PASS {name}: {status}, X-Client-State read")
        for name in ("linkAnonymous", "login"):
            if not results.get(name, {}).get("refreshToken"):
                failures.append(f"{name}: no contactToken/refreshToken read")
        login = results.get("login", {}).get("contactField") or {}
        if login.get("contactFieldValue") != "browser.test@example.com" or login.get("contactFieldId") != 3:
            failures.append(f"login: the client state's contactField does not name the contact: {login}")
        if results.get("logout", {}).get("contactField") != {}:
            failures.append(f"logout: the client state's contactField is not empty: {results.get('logout')}")
        # The sandbox saw the preflights and every call, from the page's origin, and judged the browser by the ME
        # rules only.
        log_entries = requests.get(f"{me}/_sandbox/requests", timeout=5).json()
        preflights = [e for e in log_entries if e["method"] == "OPTIONS"]
        calls = [e for e in log_entries if e["method"] != "OPTIONS"]
        if not preflights or any(e["status"] != 204 for e in preflights):
            failures.append(f"preflights: {[(e['path'], e['status']) for e in preflights]}")
        if len(calls) != len(EXPECTED) or any(e["origin"] != f"http://127.0.0.1:{page_port}" for e in calls):
            failures.append(f"calls logged: {[(e['method'], e['path'], e['origin']) for e in calls]}")
        violations = requests.get(f"{me}/_sandbox/violations", timeout=5).json()
        if violations:
            failures.append(f"the ME-rules profile flagged the browser: {violations}")
        print(f"{len(preflights)} preflights, {len(calls)} calls logged, {len(violations)} violations")
    finally:
        if chrome is not None:
            chrome.kill()
            chrome.wait()
        sandbox.terminate()
        sandbox.wait(10)
        server.shutdown()
    for failure in failures:
        print("FAIL " + failure)
    if failures:
        print(f"logs in {work}")
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)
    print("browser test passed")


if __name__ == "__main__":
    main()
