#!/usr/bin/env bash
# Load run of a release `lanyard` on its embedded defaults (SQLite + in-process store) or with
# Redis (STORE=redis): discovery, JWKS, and the token endpoint with client_credentials
# (RS256 JWT access token). Same requests and knobs as ../shared/peers/oidc-provider/run.sh,
# so the figures compare with its BASELINE.md. Results go to docs/performance.md by hand.
#
#   tests/load/run.sh                          # 3 scenarios x c=16,64 x 3 runs x 15 s
#   RUNS=1 DURATION=5 tests/load/run.sh        # a quick look
#   STORE=redis tests/load/run.sh              # the Redis store (LANYARD_TEST_REDIS_URL)
#
# Needs wrk (apt-get install wrk). Listens on 127.0.0.1 only; stops what it starts.
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-5}
CONNS=${CONNS:-"16 64"}
THREADS=${THREADS:-2}
PORT=${PORT:-8097}
STORE=${STORE:-memory}
SCENARIOS=${SCENARIOS:-"discovery jwks token_cc"}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lanyard-ci/target}"

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p lanyard-idp --bin lanyard
BIN="$CARGO_TARGET_DIR/release/lanyard"

WORK=$(mktemp -d)
trap 'kill "${PID:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
export LANYARD_DATABASE_URL="sqlite://$WORK/lanyard.db"
export LANYARD_LISTEN="127.0.0.1:$PORT"
export LANYARD_ISSUER="http://127.0.0.1:$PORT"
export RUST_LOG=warn
if [ "$STORE" = redis ]; then
  export LANYARD_REDIS_URL="${LANYARD_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
  export LANYARD_REDIS_PREFIX="lanyard-load-$$:"
fi

SECRET="bench-secret-bench-secret-bench-secret-0000"
echo "$SECRET" | "$BIN" client add bench --secret-stdin --grant-type client_credentials --scope api:read --scope api:write >/dev/null
"$BIN" serve > "$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/jwks" >/dev/null && break; sleep 0.1; done

BASIC=$(printf 'bench:%s' "$SECRET" | base64 -w0)
cat > "$WORK/token.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=api%3Aread"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $BASIC"
LUA
echo 'wrk.method = "GET"' > "$WORK/get.lua"

path_of() { case $1 in discovery) echo /.well-known/openid-configuration;; jwks) echo /jwks;; token_cc) echo /token;; esac; }
lua_of() { case $1 in token_cc) echo "$WORK/token.lua";; *) echo "$WORK/get.lua";; esac; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }

# The token must really work before it is measured.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -u "bench:$SECRET" -d 'grant_type=client_credentials&scope=api%3Aread' "http://127.0.0.1:$PORT/token")
[ "$code" = 200 ] || { echo "token request failed: $code" >&2; cat "$WORK/server.log" >&2; exit 1; }

hz=$(getconf CLK_TCK)
printf '%-10s %4s %3s %9s %8s %8s %8s %10s %6s\n' scenario conc run rps p50_ms p99_ms cpu_pct cpu_us/req non2xx
for s in $SCENARIOS; do
  wrk -t"$THREADS" -c16 -d"${WARMUP}s" -s "$(lua_of "$s")" "http://127.0.0.1:$PORT$(path_of "$s")" >/dev/null
  for run in $(seq "$RUNS"); do
    for c in $CONNS; do
      before=$(cpu_ticks)
      out=$(wrk -t"$THREADS" -c"$c" -d"${DURATION}s" --latency --timeout 10s -s "$(lua_of "$s")" "http://127.0.0.1:$PORT$(path_of "$s")")
      after=$(cpu_ticks)
      rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
      total=$(awk '/requests in/ {print $1}' <<<"$out")
      non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out"); non2xx=${non2xx:-0}
      p50=$(awk '$1=="50%" {print $2}' <<<"$out")
      p99=$(awk '$1=="99%" {print $2}' <<<"$out")
      cpu_s=$(awk -v a="$before" -v b="$after" -v hz="$hz" 'BEGIN {print (b - a) / hz}')
      printf '%-10s %4s %3s %9s %8s %8s %8.0f %10.0f %6s\n' "$s" "$c" "$run" "$rps" "$p50" "$p99" \
        "$(awk -v c="$cpu_s" -v d="$DURATION" 'BEGIN {print 100 * c / d}')" \
        "$(awk -v c="$cpu_s" -v n="$total" 'BEGIN {print 1e6 * c / n}')" "$non2xx"
      sleep 1
    done
  done
done
