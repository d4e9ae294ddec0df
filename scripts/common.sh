# shellcheck shell=bash
# Shared helpers for ./dev: messages, tool checks, Python. Prefix `tk_`.
# Expects TK_ROOT (the repository top) to be set by the caller.

tk_info() { printf 'dev: %s\n' "$*" >&2; }
tk_warn() { printf 'dev: warning: %s\n' "$*" >&2; }
tk_fail() { printf 'dev: error: %s\n' "$*" >&2; }
tk_die() {
    tk_fail "$*"
    exit 1
}

# Dies unless COMMAND is on PATH. Usage: tk_need COMMAND HOW_TO_GET_IT
tk_need() {
    command -v "$1" >/dev/null 2>&1 || tk_die "'$1' not found: $2"
}

# The system Python (stdlib only); works before the venv exists.
tk_python() {
    if [[ -x /usr/bin/python3 ]]; then
        /usr/bin/python3 "$@"
    else
        python3 "$@"
    fi
}

# Milliseconds since the epoch (for timings in messages).
tk_now_ms() {
    date +%s%3N
}

# Prints "N.Ns" since START_MS.
tk_since() {
    local ms=$(($(tk_now_ms) - $1))
    printf '%d.%01ds' $((ms / 1000)) $((ms % 1000 / 100))
}
