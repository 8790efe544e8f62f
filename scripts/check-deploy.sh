#!/usr/bin/env bash
# The deploy files with the tools operators use, installed from the package registries when missing:
#   the compose file against the compose specification's schema (check-jsonschema, PyPI),
#   every Kubernetes manifest against the API schemas (kubernetes-validate, PyPI) and the kustomization's files,
#   the alert rules (promtool check rules, promtool test rules; Debian's `prometheus` package),
#   the Grafana dashboard (JSON, every panel with queries),
#   then a real Prometheus scraping a running bridge (scripts/prometheus-test.py).
#   scripts/check-deploy.sh [PUSHBRIDGE_BINARY]    (default: the debug build, built if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib-binary.sh
pushbridge_binary check-deploy "$@"

if ! command -v check-jsonschema >/dev/null || ! command -v kubernetes-validate >/dev/null; then
    python3 -m pip install --quiet check-jsonschema kubernetes-validate
fi
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

echo "== compose file against the compose specification"
check-jsonschema --builtin-schema vendor.compose-spec deploy/compose.yaml
echo "== Kubernetes manifests"
kubernetes-validate --strict deploy/kubernetes/deployment.yaml deploy/kubernetes/service.yaml deploy/kubernetes/poddisruptionbudget.yaml
python3 - <<'PY'
import os, yaml
k = yaml.safe_load(open("deploy/kubernetes/kustomization.yaml"))
files = k["resources"] + [f for g in k.get("configMapGenerator", []) for f in g["files"]]
missing = [f for f in files if not os.path.exists(os.path.join("deploy/kubernetes", f))]
assert not missing, f"kustomization names missing files: {missing}"
print(f"kustomization: {len(files)} files present")
PY
echo "== alert rules"
promtool check rules deploy/prometheus/alerts.yaml
(cd deploy/prometheus && promtool test rules alerts.test.yaml)
echo "== Grafana dashboard"
python3 - <<'PY'
import json
d = json.load(open("deploy/grafana/pushbridge.json"))
assert d["panels"] and all(p["targets"] and all(t["expr"] for t in p["targets"]) for p in d["panels"]), "a panel without queries"
print(f"dashboard: {len(d['panels'])} panels, {sum(len(p['targets']) for p in d['panels'])} queries")
PY
echo "== a real Prometheus against a running bridge"
python3 scripts/prometheus-test.py "$bin"
