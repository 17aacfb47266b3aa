#!/usr/bin/env bash
# `make test`: lint and type-check (and validate docker-compose.yml), then the whole test
# suite against a real broker.
# A local broker is started when none answers at KAFKA_BOOTSTRAP_SERVERS (default
# 127.0.0.1:9092), and stopped at the end only if this script started it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/bootstrap.sh

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== docker compose config"
# the compose CLI alone (no Docker daemon needed) validates docker-compose.yml against
# the Compose schema and its references; with the `cluster` profile every service is in
compose="$(scripts/go-tool.sh docker-compose)"
"$compose" -f docker-compose.yml --profile cluster config --quiet
echo "== promtool: the alert rules, their unit tests, the example Prometheus config"
promtool="$(scripts/go-tool.sh promtool)"
"$promtool" check rules ops/prometheus/alerts.yml
"$promtool" test rules ops/prometheus/alerts_test.yml
"$promtool" check config ops/prometheus/prometheus.yml

bootstrap="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}"
first="${bootstrap%%,*}"
host="${first%:*}"
port="${first##*:}"
started=""
stop_broker() { [[ -n "$started" ]] && KAFKA_PORT="$port" scripts/kafka.sh stop || true; }
trap stop_broker EXIT
if ! (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
  started=1 # before starting: a broker that fails to answer in time is still ours to stop
  KAFKA_PORT="$port" scripts/kafka.sh start
fi
export KAFKA_BOOTSTRAP_SERVERS="$bootstrap"

echo "== pytest (broker at $bootstrap)"
.venv/bin/pytest -q --durations=15 "$@"
