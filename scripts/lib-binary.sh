# Sourced by the scripts that test the executable: sets `bin` to the pushbridge binary they were given, or to the
# debug build (built if needed).   Usage: source scripts/lib-binary.sh; pushbridge_binary NAME "$@"
pushbridge_binary() {
    local name=$1; shift
    if [[ $# -ge 1 ]]; then
        bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
    else
        swift build --product pushbridge
        bin="$(swift build --show-bin-path)/pushbridge"
    fi
    [[ -x "$bin" ]] || { echo "$name: no executable at $bin" >&2; exit 1; }
}
