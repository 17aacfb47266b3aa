#!/usr/bin/env bash
# `make start`: a broker (unless one answers), two faust workers, sample traffic.
# Each worker runs under a supervisor: one that fails (exits non-zero: a crash, a
# SIGKILL) is started again (same name, same data dir: it rejoins with its own
# partitions), after a back-off that doubles up to 30 s while it keeps failing, and
# the supervisor says so; one that stops cleanly (a signal) stays stopped. Ctrl-C stops traffic
# and workers (SIGTERM, then wait), and the broker only if this script started it.
#
# Environment:
#   KAFKA_BOOTSTRAP_SERVERS  use this broker (default 127.0.0.1:9092); a local one is
#                            started on that port only when nothing answers there
#   WEB_PORT_1, WEB_PORT_2   the workers' HTTP ports (default 6066, 6067)
#   TRAFFIC_RATE             sample commands per second (default 2; 0 = no traffic)
#   TRAFFIC_ACCOUNTS         accounts the sample traffic uses (default 20)
#   START_TIMEOUT            seconds to wait for the workers to be healthy (default 180)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bootstrap="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}"
port_1="${WEB_PORT_1:-6066}"
port_2="${WEB_PORT_2:-6067}"
rate="${TRAFFIC_RATE:-2}"
accounts="${TRAFFIC_ACCOUNTS:-20}"
start_timeout="${START_TIMEOUT:-180}"

say() { echo "start: $*" >&2; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

broker_started=""
broker_port=""
supervisor_pids=()
traffic_pid=""

stop_pid() { # pid name: SIGTERM, wait up to 30s, then SIGKILL
  local pid="$1" name="$2"
  kill -0 "$pid" 2>/dev/null || return 0
  say "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.5
  done
  say "$name did not stop in 30s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleaned=""
cleanup() {
  [[ -n "$cleaned" ]] && return
  cleaned=1
  trap '' INT TERM
  touch .run/stopping # the supervisors restart nothing from now on
  [[ -n "$traffic_pid" ]] && stop_pid "$traffic_pid" "traffic"
  local n pid stoppers=()
  for n in 1 2; do
    pid="$(cat ".run/worker-$n.pid" 2>/dev/null || true)"
    if [[ -n "$pid" ]]; then
      stop_pid "$pid" "worker-$n" &
      stoppers+=("$!")
    fi
  done
  # only these: a bare `wait` would also wait for the supervisors and the idle sleep
  ((${#stoppers[@]})) && wait "${stoppers[@]}"
  for pid in "${supervisor_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [[ -n "$broker_started" ]]; then
    KAFKA_PORT="$broker_port" scripts/kafka.sh stop
  fi
  say "stopped"
}
# Ctrl-C is how the shop is stopped: a clean stop, exit 0
trap 'cleanup; exit 0' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

scripts/bootstrap.sh

# --- broker -------------------------------------------------------------------
first="${bootstrap%%,*}"
host="${first%:*}"
broker_port="${first##*:}"
if port_open "$host" "$broker_port"; then
  say "using the Kafka broker at $bootstrap"
elif [[ "$host" == "127.0.0.1" || "$host" == "localhost" ]]; then
  broker_started=1 # before starting: a broker that fails to answer in time is still ours to stop
  KAFKA_PORT="$broker_port" scripts/kafka.sh ensure
else
  say "no broker answers at $bootstrap (KAFKA_BOOTSTRAP_SERVERS); start it, or unset it" \
    "to run a local one"
  exit 1
fi
export KAFKA_BOOTSTRAP_SERVERS="$bootstrap"

# --- workers ------------------------------------------------------------------
for port in "$port_1" "$port_2"; do
  if port_open 127.0.0.1 "$port"; then
    say "port $port is in use; set WEB_PORT_1/WEB_PORT_2 to free ports"
    exit 1
  fi
done
# Stores in RocksDB hold one broker's offsets: another broker gets its own data dir.
data_root=".data"
if [[ "$bootstrap" != "127.0.0.1:9092" ]]; then
  data_root=".data/broker-${first//[^A-Za-z0-9.-]/-}"
fi
mkdir -p .run "$data_root"
rm -f .run/stopping

supervise() { # n port: run worker-n, and start it again whenever it fails
  local n="$1" port="$2" backoff=1 started pid status
  while [[ ! -e .run/stopping ]]; do
    started=$SECONDS
    # `shop worker` execs faust: $! is the worker itself, its signals and exit status
    PYTHONUNBUFFERED=1 .venv/bin/shop worker --instance-id "worker-$n" \
      --data-dir "$data_root/worker-$n" --port "$port" >>".run/worker-$n.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >".run/worker-$n.pid"
    status=0
    wait "$pid" || status=$?
    [[ -e .run/stopping ]] && return 0
    if ((status == 0)); then # stopped on purpose (a signal, Ctrl-C): not restarted
      say "worker-$n (pid $pid) stopped"
      return 0
    fi
    ((SECONDS - started > 60)) && backoff=1 # it ran a while: not a crash loop
    say "worker-$n (pid $pid) exited with status $status; starting it again in ${backoff}s" \
      "(log .run/worker-$n.log)"
    sleep "$backoff"
    backoff=$((backoff * 2 > 30 ? 30 : backoff * 2))
  done
}

n=0
for port in "$port_1" "$port_2"; do
  n=$((n + 1))
  : >".run/worker-$n.log"
  supervise "$n" "$port" &
  supervisor_pids+=("$!")
  say "worker-$n on http://127.0.0.1:$port (supervised), log .run/worker-$n.log"
done

health() { # port -> HTTP status of /health ("000" when nothing answers)
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/health" || true
}

say "waiting for the workers to be healthy (up to ${start_timeout}s)"
deadline=$((SECONDS + start_timeout))
for port in "$port_1" "$port_2"; do
  until [[ "$(health "$port")" == "200" ]]; do
    if ((SECONDS >= deadline)); then
      say "http://127.0.0.1:$port/health is not 200 after ${start_timeout}s; last lines of" \
        "its log:"
      tail -n 40 ".run/worker-$([[ "$port" == "$port_1" ]] && echo 1 || echo 2).log" >&2
      exit 1
    fi
    sleep 1
  done
done

cat <<EOF

  The shop is running.
    API        http://127.0.0.1:$port_1  and  http://127.0.0.1:$port_2  (any worker answers)
    dashboard  http://127.0.0.1:$port_1/dashboard
    API docs   http://127.0.0.1:$port_1/docs  (the contract: /openapi.json)
    health     http://127.0.0.1:$port_1/health
    try        curl -s http://127.0.0.1:$port_1/accounts/cust-0001
               curl -s "http://127.0.0.1:$port_1/orders?status=shipped&limit=5"
               curl -s http://127.0.0.1:$port_2/products/SKU-001
    logs       .run/worker-1.log  .run/worker-2.log
  Ctrl-C stops everything this started.

EOF

if [[ "$rate" != "0" ]]; then
  .venv/bin/shop traffic --url "http://127.0.0.1:$port_1" --rate "$rate" \
    --accounts "$accounts" &
  traffic_pid="$!"
fi
say "running; Ctrl-C to stop"
# wait for Ctrl-C (the traps clean up); the supervisors restart a worker that exits
while true; do
  # in the background: `wait` returns at once on Ctrl-C, so the trap runs at once
  sleep 2 &
  wait $! || true
done
