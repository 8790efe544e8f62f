#!/usr/bin/env python3
"""The module rules, checked from Package.swift and the sources (no build needed):

1. The pure core stays pure: the dependency closure of `Workflow` and `MobileEngage` (their targets, and the
   packages of every product those targets use) holds no networking, HTTP or database package.
2. Every target imports only what it declares (a target or a product named in its dependencies, or a module of the
   toolchain), and declares nothing it never imports.
3. No source file is over 400 lines, generated files apart.
4. The README's module graph (between the module-graph markers) is the one Package.swift gives.

    scripts/check-architecture.py           check; exit 1 and say why on any breach
    scripts/check-architecture.py --write   rewrite the README's module graph from Package.swift
"""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PURE = ["Workflow", "MobileEngage"]
# Packages that do I/O over the network or a database: none may be in the pure core's closure.
IO_PACKAGES = {
    "async-http-client", "swift-nio", "swift-nio-ssl", "swift-nio-http2", "swift-nio-extras",
    "swift-nio-transport-services", "postgres-nio", "grdb.swift", "hummingbird", "swift-service-lifecycle",
}
TOOLCHAIN = {"Foundation", "FoundationEssentials", "Dispatch", "Synchronization", "Testing", "XCTest", "Glibc",
             "Darwin", "_Concurrency", "os"}
GENERATED = {"Sources/PushbridgeServer/OpenAPIDocument.swift", "Sources/PushTokens/BuiltInProviders.swift"}
MAX_LINES = 400
BEGIN, END = "<!-- module-graph:begin (scripts/check-architecture.py --write) -->", "<!-- module-graph:end -->"


def package():
    out = subprocess.run(["swift", "package", "dump-package"], cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def deps_of(target):
    """(project targets, {product: package identity}) a target declares."""
    targets, products = [], {}
    for dep in target.get("dependencies", []):
        kind, value = next(iter(dep.items()))
        if kind in ("byName", "target"):
            targets.append(value[0])
        elif kind == "product":
            products[value[0]] = (value[1] or "").lower()
    return targets, products


def directory(target):
    if target.get("path"):
        return target["path"]
    return ("Tests/" if target["type"] == "test" else "Sources/") + target["name"]


def imports(path):
    found = set()
    for base, _, files in os.walk(os.path.join(ROOT, path)):
        for name in files:
            if not name.endswith(".swift"):
                continue
            with open(os.path.join(base, name), encoding="utf-8") as f:
                for line in f:
                    m = re.match(r"^\s*(?:@testable\s+|@_spi\([^)]*\)\s+|public\s+|internal\s+|package\s+)*import\s+(?:(?:struct|class|enum|protocol|func|typealias|var)\s+)?([A-Za-z_][A-Za-z0-9_]*)", line)
                    if m:
                        found.add(m.group(1))
    return found


def graph(pkg):
    """The README's block: one line per source target, its project targets, then its external products."""
    lines = ["```"]
    for t in pkg["targets"]:
        if t["type"] == "test":
            continue
        targets, products = deps_of(t)
        inner = ", ".join(targets) if targets else "-"
        outer = ", ".join(sorted(products)) if products else "-"
        lines.append(f"{t['name']:<20} -> {inner:<50} | {outer}")
    lines.append("```")
    return "\n".join(lines)


def main():
    write = "--write" in sys.argv[1:]
    pkg = package()
    by_name = {t["name"]: t for t in pkg["targets"]}
    problems = []

    # 1. The pure core's closure.
    for root in PURE:
        seen, stack = set(), [root]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            targets, products = deps_of(by_name[name])
            stack += targets
            for product, pkg_id in products.items():
                if pkg_id in IO_PACKAGES:
                    problems.append(f"{root} depends (through {name}) on {product} of {pkg_id}: the pure core must do no I/O")

    # 2. Imports against declarations.
    for t in pkg["targets"]:
        targets, products = deps_of(t)
        declared = set(targets) | set(products)
        used = imports(directory(t))
        for module in sorted(used - declared - TOOLCHAIN - {t["name"]}):
            problems.append(f"{t['name']} imports {module} without declaring it in Package.swift")
        for module in sorted(declared - used):
            problems.append(f"{t['name']} declares {module} but never imports it")

    # 3. File lengths.
    for top in ("Sources", "Tests"):
        for base, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if not name.endswith(".swift"):
                    continue
                full = os.path.join(base, name)
                rel = os.path.relpath(full, ROOT)
                with open(full, encoding="utf-8") as f:
                    count = sum(1 for _ in f)
                if top == "Sources" and rel not in GENERATED and count > MAX_LINES:
                    problems.append(f"{rel} has {count} lines (at most {MAX_LINES} outside generated files)")

    # 4. The README's graph.
    readme_path = os.path.join(ROOT, "README.md")
    with open(readme_path, encoding="utf-8") as f:
        readme = f.read()
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        problems.append("README.md has no module-graph markers")
    else:
        current = readme[start + len(BEGIN):end].strip("\n")
        wanted = graph(pkg)
        if current != wanted:
            if write:
                readme = readme[:start + len(BEGIN)] + "\n" + wanted + "\n" + readme[end:]
                with open(readme_path, "w", encoding="utf-8") as f:
                    f.write(readme)
                print("README.md: module graph rewritten from Package.swift")
            else:
                problems.append("README.md's module graph is not Package.swift's: run scripts/check-architecture.py --write")

    if problems:
        for p in problems:
            print("FAIL " + p)
        print(f"check-architecture: {len(problems)} problem(s)")
        return 1
    print("check-architecture: the pure core does no I/O, every import is declared, no file is over "
          f"{MAX_LINES} lines, the README's module graph is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
