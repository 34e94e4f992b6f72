#!/usr/bin/env bash
# What the tests need, installed (Debian/Ubuntu packages with apt-get, as root or through sudo;
# Node and Python packages pinned in tests/interop/, Python ones in virtual environments under
# the build folder) and started (Redis, PostgreSQL) when missing. Sourced by tests/run (the
# README's test command) and .ci/run; `setup_tests` does it all. Every wait has a limit.

step() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

apt_install() {
  step "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# PING over bash's /dev/tcp: no client tools needed.
redis_answers() {
  local host=$1 port=$2 reply=""
  exec 3<>"/dev/tcp/$host/$port" 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  read -r -t 2 reply <&3 || true
  exec 3>&- 3<&-
  [[ $reply == +PONG* ]]
}

ensure_redis() {
  # The durability tests start redis-server processes of their own, a three-node cluster
  # (created with redis-cli) and a sentinel.
  command -v redis-server >/dev/null || apt_install redis-server
  command -v redis-cli >/dev/null || apt_install redis-tools
  command -v redis-sentinel >/dev/null || apt_install redis-sentinel
  local url=${LANYARD_TEST_REDIS_URL:-redis://127.0.0.1:6379}
  local hostport=${url#redis://}; hostport=${hostport##*@}; hostport=${hostport%%/*}
  local host=${hostport%%:*} port=${hostport##*:}
  [ "$port" = "$host" ] && port=6379
  if redis_answers "$host" "$port"; then
    echo "Redis answers at $host:$port"
    return
  fi
  step "starting redis-server on $host:$port"
  redis-server --daemonize yes --bind "$host" --port "$port" --save "" --appendonly no \
    --dir "${TMPDIR:-/tmp}" --logfile "${TMPDIR:-/tmp}/lanyard-ci-redis.log"
  for _ in $(seq 50); do
    redis_answers "$host" "$port" && return
    sleep 0.2
  done
  echo "redis-server did not come up on $host:$port" >&2
  exit 1
}

port_open() {
  exec 3<>"/dev/tcp/$1/$2" 2>/dev/null || return 1
  exec 3>&- 3<&-
}

ensure_postgres() {
  local url=${LANYARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
  if ! port_open 127.0.0.1 5432; then
    command -v pg_ctlcluster >/dev/null || apt_install postgresql
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    step "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 50); do
      port_open 127.0.0.1 5432 && break
      sleep 0.2
    done
  fi
  command -v psql >/dev/null || { echo "PostgreSQL answers; psql is not installed, trusting $url"; return; }
  if psql "$url" -qAtc 'select 1' >/dev/null 2>&1; then
    echo "PostgreSQL answers at $url"
    return
  fi
  # A fresh Debian install asks for a password over TCP: give the postgres role one.
  step "setting a password for the postgres role"
  as_root su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'lanyard-ci'\"" >/dev/null
  export LANYARD_TEST_POSTGRES_URL=postgres://postgres:lanyard-ci@127.0.0.1:5432/postgres
  psql "$LANYARD_TEST_POSTGRES_URL" -qAtc 'select 1' >/dev/null || {
    echo "cannot log in to PostgreSQL at 127.0.0.1:5432 as postgres" >&2
    exit 1
  }
}

# A Python virtual environment at $1, made if missing (python3-venv installed if needed).
make_venv() {
  [ -x "$1/bin/python" ] && return
  python3 -m venv "$1" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$1"; }
}

# The independent clients the interop and SCIM tests run (tests/interop/), pinned: openid-client
# on Node.js 20+ as tests/interop/node/package-lock.json locks it; Authlib as
# tests/interop/python/requirements.txt pins it, in a virtual environment first on PATH ($tools_venv:
# a stock Debian refuses `pip install` outside one); scim2-tester in one of its own (its pydantic
# pins stay apart). `tests/interop/run` calls this alone; `setup_tests` with everything else.
setup_interop() {
  local venvs="$CARGO_TARGET_DIR/venvs"
  mkdir -p "$venvs"
  tools_venv="$venvs/tools"
  make_venv "$tools_venv"
  export PATH="$tools_venv/bin:$PATH"
  command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$node_major" -lt 20 ]; then
    # Debian 12 ships Node 18. The npm registry carries Node itself (the `node` package and its
    # per-platform binary packages): install 20 beside the build cache and put it first.
    node_prefix="$CARGO_TARGET_DIR/node20"
    if [ ! -x "$node_prefix/node_modules/.bin/node" ]; then
      step "npm install node@20 (this machine has $(node --version))"
      npm install --prefix "$node_prefix" --no-audit --no-fund node@20
    fi
    export PATH="$node_prefix/node_modules/.bin:$PATH"
    node_major=$(node -p 'process.versions.node.split(".")[0]')
    [ "$node_major" -ge 20 ] || { echo "could not get Node.js 20 or later" >&2; exit 1; }
  fi
  if ! node tests/interop/node/locked.cjs 2>/dev/null; then
    step "npm ci --prefix tests/interop/node"
    npm ci --prefix tests/interop/node --no-audit --no-fund
  fi
  if ! python3 tests/interop/python/flow.py --check-requirements 2>/dev/null; then
    step "pip install -r tests/interop/python/requirements.txt (into $tools_venv)"
    "$tools_venv/bin/python" -m pip install -q -r tests/interop/python/requirements.txt
  fi
  scim_venv="$venvs/scim"
  if ! "$scim_venv/bin/python" tests/interop/scim/check.py --check-requirements 2>/dev/null; then
    step "pip install -r tests/interop/scim/requirements.txt (into $scim_venv)"
    make_venv "$scim_venv"
    "$scim_venv/bin/python" -m pip install -q -r tests/interop/scim/requirements.txt
  fi
  export LANYARD_SCIM_PYTHON="$scim_venv/bin/python"
}

setup_tests() {
  step "what the tests need"
  local venvs="$CARGO_TARGET_DIR/venvs"
  mkdir -p "$venvs"
  # The admin API's documented curl commands are run by the tests.
  command -v curl >/dev/null && command -v jq >/dev/null || apt_install curl jq
  # operations.md's backup and restore commands are run by the tests too.
  command -v pg_dump >/dev/null && command -v pg_restore >/dev/null || apt_install postgresql-client
  command -v sqlite3 >/dev/null || apt_install sqlite3
  # Lanyard behind a real reverse proxy is tested with Debian's nginx (the test starts its own).
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx
  # The sign-in pages are tested in a real browser: Debian's Chromium and its WebDriver.
  command -v chromium >/dev/null && command -v chromedriver >/dev/null || apt_install chromium chromium-driver
  # The independent clients (tests/interop/), with Authlib's virtual environment first on PATH.
  setup_interop
  # Schemathesis checks the admin API's OpenAPI document against the running API (a test),
  # from the same virtual environment as Authlib.
  SCHEMATHESIS_VERSION=4.32.5
  if ! st --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
    step "pip install schemathesis==$SCHEMATHESIS_VERSION (into $tools_venv)"
    "$tools_venv/bin/python" -m pip install -q "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  # The SMTP sink the mail tests send to (aiosmtpd, tests/interop/smtp/sink.py), in a virtual
  # environment of its own.
  smtp_venv="$venvs/smtp"
  if ! "$smtp_venv/bin/python" tests/interop/smtp/sink.py --check-requirements 2>/dev/null; then
    step "pip install -r tests/interop/smtp/requirements.txt (into $smtp_venv)"
    make_venv "$smtp_venv"
    "$smtp_venv/bin/python" -m pip install -q -r tests/interop/smtp/requirements.txt
  fi
  export LANYARD_SMTP_PYTHON="$smtp_venv/bin/python"
  ensure_redis
  ensure_postgres
}
