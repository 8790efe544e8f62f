"""What the Python test scripts share: logging, free ports, waiting for a server, the bridge process, the
`requests` package.

Imported by crash-test.py, e2e-simulation.py, sigterm-test.py and multi-instance-test.py (run as `python3 scripts/NAME.py`, so this
folder is on `sys.path`).
"""
import os
import signal
import socket
import subprocess
import sys
import time

try:
    import requests
except ImportError:  # pragma: no cover
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "requests"])
    import requests

APP = "EMS12-34567"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

__all__ = ["APP", "REPO", "Bridge", "free_port", "log", "requests", "wait_http"]


def log(msg):
    """A timestamped progress line, flushed at once (so that it shows up in CI logs as it happens)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, deadline_s, proc=None, interval=0.05):
    """Polls `url` until it answers 200 (True), `deadline_s` passes or `proc` exits (False)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(interval)
    return False


class Bridge:
    """A `pushbridge serve` process: start, SIGKILL, restart on the same storage, stop. Each start logs to
    `bridge-N.log` in `workdir`."""

    def __init__(self, binary, config, port, workdir):
        self.binary, self.config, self.port, self.workdir = binary, config, port, workdir
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        logf = open(os.path.join(self.workdir, f"bridge-{self.starts}.log"), "wb")
        self.proc = subprocess.Popen([self.binary, "serve", "--config", self.config], cwd=self.workdir,
                                     stdout=logf, stderr=subprocess.STDOUT)
        if not wait_http(f"http://127.0.0.1:{self.port}/health", 60, self.proc):
            raise RuntimeError(f"bridge did not come up (start #{self.starts}); see {logf.name}")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
