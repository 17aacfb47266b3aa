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

# Three test files at a time (pytest-xdist; a file's tests stay in one process, so its
# module fixtures, one shop each, start once): most of an integration test is waiting
# on Kafka and on workers, so three share the two cores of the machine CI runs on and
# the suite takes about half the time it takes one file at a time. The broker is
# started above, once, not by each process. TEST_PROCESSES=0 runs in this process.
processes="${TEST_PROCESSES:-3}"
echo "== pytest (broker at $bootstrap, $processes processes)"
if [[ "$processes" == 0 ]]; then
  .venv/bin/pytest -q --durations=15 "$@"
else
  .venv/bin/pytest -q --durations=15 -n "$processes" --dist loadfile "$@"
fi
