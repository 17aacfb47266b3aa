#!/usr/bin/env bash
# `make start`: a broker (unless one answers), two faust workers, sample traffic.
# Ctrl-C stops traffic and workers (SIGTERM, then wait), and the broker only if
# this script started it.
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
worker_pids=()
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
  [[ -n "$traffic_pid" ]] && stop_pid "$traffic_pid" "traffic"
  local pid
  for pid in "${worker_pids[@]}"; do stop_pid "$pid" "worker" & done
  wait
  if [[ -n "$broker_started" ]]; then
    KAFKA_PORT="$broker_port" scripts/kafka.sh stop
  fi
  say "stopped"
}
trap 'cleanup; exit 130' INT
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
n=0
for port in "$port_1" "$port_2"; do
  n=$((n + 1))
  SHOP_INSTANCE_ID="worker-$n" PYTHONUNBUFFERED=1 \
    .venv/bin/faust -A app.worker -D "$data_root/worker-$n" worker -l info -p "$port" -h 127.0.0.1 \
    >".run/worker-$n.log" 2>&1 </dev/null &
  worker_pids+=("$!")
  echo "$!" >".run/worker-$n.pid"
  say "worker-$n (pid $!) on http://127.0.0.1:$port, log .run/worker-$n.log"
done

health() { # port -> HTTP status of /health ("000" when nothing answers)
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/health" || true
}

say "waiting for the workers to be healthy (up to ${start_timeout}s)"
deadline=$((SECONDS + start_timeout))
for port in "$port_1" "$port_2"; do
  until [[ "$(health "$port")" == "200" ]]; do
    n=0
    for pid in "${worker_pids[@]}"; do
      n=$((n + 1))
      if ! kill -0 "$pid" 2>/dev/null; then
        say "worker-$n exited; last lines of .run/worker-$n.log:"
        tail -n 40 ".run/worker-$n.log" >&2
        exit 1
      fi
    done
    if ((SECONDS >= deadline)); then
      say "http://127.0.0.1:$port/health is not 200 after ${start_timeout}s; see .run/*.log"
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
# wait for Ctrl-C (the traps clean up); a worker that dies ends the run
while true; do
  for pid in "${worker_pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "a worker (pid $pid) exited; see .run/*.log"
      exit 1
    fi
  done
  # in the background: `wait` returns at once on Ctrl-C, so the trap stops everything
  # before this loop could take the workers' own exit (they get the SIGINT too) for a crash
  sleep 2 &
  wait $! || true
done
