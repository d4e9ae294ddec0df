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

# Writes a COMMAND_KEYS file at PATH (once): one key, "gateway", allowed to
# act as admin and customer, 32 random bytes in base64. ./dev and the bench
# pass it to the gateway and the workers as COMMAND_KEYS_FILE.
tk_ensure_command_keys() {
    local path=$1
    [[ -s $path ]] && return 0
    (umask 077 && printf 'gateway:%s:admin+customer\n' "$(head -c 32 /dev/urandom | base64 -w0)" >"$path.tmp")
    mv "$path.tmp" "$path"
}
