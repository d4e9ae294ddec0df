# shellcheck shell=bash
# Installs what ./dev needs on a Debian bookworm machine: Debian packages
# (apt-get, only those missing), Go on PATH, and the Python venv for the
# tests in .cache/venv (pinned by tests/requirements.txt).
# Sourced by ./dev after scripts/common.sh.

TK_APT_PACKAGES=(
    build-essential cmake pkg-config
    librdkafka-dev libmicrohttpd-dev libjansson-dev libjwt-dev
    libmongoc-dev libbson-dev libcmocka-dev libssl-dev
    clang libclang-rt-14-dev
    python3-venv
    openjdk-17-jre-headless openjdk-17-jdk-headless maven
    curl patch procps
    shellcheck       # the shell scripts' check in ./dev test (tests/CMakeLists.txt)
    clang-format     # ./dev format, and its check in ./dev test (.clang-format)
    postgresql-15    # FerretDB's backend; binaries in /usr/lib/postgresql/15/bin
    openssl          # the test CA of the SASL_SSL listener (scripts/stack.sh)
)
TK_VENV="$TK_ROOT/.cache/venv"
TK_REQUIREMENTS="$TK_ROOT/tests/requirements.txt"

# Prints the packages of "$@" that are not installed.
tk_missing_packages() {
    local pkg status
    for pkg in "$@"; do
        status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
        [[ $status == ii* ]] || echo "$pkg"
    done
}

# apt-get install "$@" (as root, or with sudo).
tk_apt_install() {
    local sudo=()
    if ((EUID != 0)); then
        tk_need sudo "run as root or install: $*"
        sudo=(sudo)
    fi
    tk_info "installing Debian packages: $*"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
        tk_die "apt-get update failed"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "$@" || tk_die "apt-get install failed for: $*"
}

# Go: /usr/local/go/bin on PATH; from Debian only when there is no go at all.
tk_ensure_go() {
    if [[ -d /usr/local/go/bin && :$PATH: != *:/usr/local/go/bin:* ]]; then
        PATH="/usr/local/go/bin:$PATH"
    fi
    if ! command -v go >/dev/null 2>&1; then
        tk_apt_install golang-go
    fi
    local minor
    minor=$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
    if [[ -z $minor ]] || ((minor < 21)); then
        # Go >= 1.21 fetches the toolchain that tools/ferretdb/go.mod asks for.
        tk_die "Go $(go env GOVERSION) is too old to build FerretDB (need >= 1.21, ideally >= 1.24 at /usr/local/go)"
    fi
    export PATH
}

# .cache/venv with tests/requirements.txt; reinstalled only when that file changes.
tk_ensure_venv() {
    local stamp="$TK_VENV/.requirements.sha256" want
    want=$(sha256sum "$TK_REQUIREMENTS" | cut -d' ' -f1)
    if [[ -x $TK_VENV/bin/python && -f $stamp && $(<"$stamp") == "$want" ]] &&
            "$TK_VENV/bin/python" -c '' 2>/dev/null; then
        return 0
    fi
    local log="$TK_ROOT/.cache/venv-install.log"
    mkdir -p "$TK_ROOT/.cache"
    if ! [[ -x $TK_VENV/bin/python ]] || ! "$TK_VENV/bin/python" -c '' 2>/dev/null; then
        tk_info "creating Python venv in .cache/venv ..."
        rm -rf "$TK_VENV"
        tk_python -m venv "$TK_VENV" >"$log" 2>&1 || tk_die "python3 -m venv failed; see $log"
    fi
    tk_info "installing tests/requirements.txt into .cache/venv ..."
    # python -m pip, not bin/pip: a venv's scripts name the path it was made
    # at, so a copied .cache would install into the original's venv.
    PIP_CACHE_DIR="$TK_ROOT/.cache/pip" "$TK_VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -r "$TK_REQUIREMENTS" >>"$log" 2>&1 || tk_die "pip install failed; see $log"
    echo "$want" >"$stamp"
}

# Everything: Debian packages, Go, venv. Fast (no apt call) on a ready machine.
tk_ensure_deps() {
    local missing
    missing=$(tk_missing_packages "${TK_APT_PACKAGES[@]}")
    if [[ -n $missing ]]; then
        # shellcheck disable=SC2086 # one package per word
        tk_apt_install $missing
    fi
    tk_ensure_go
    tk_ensure_venv
}
