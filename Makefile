# The two commands of the README, and a few conveniences. `make help` lists them: every
# target has a `##` comment after its colon, which is what help prints.
.PHONY: help start test lint constraints alerts-demo bench bench-peers failover soak soak-read startup-loop crash-loop kill-matrix saga-kill-loop broker-start broker-stop cluster-start cluster-stop clean

help:  ## list these targets with what each does
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

start:  ## broker + two workers + sample traffic; Ctrl-C stops it all
	@scripts/start.sh

test:   ## ruff, mypy and every test, against a real broker (started if none answers)
	@scripts/test.sh

lint:  ## ruff (lint and format check) and mypy
	@scripts/bootstrap.sh
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

constraints:  ## constraints.txt (the pinned versions CI and the image install) from .venv, after changing a dependency
	.venv/bin/python scripts/constraints.py

alerts-demo:  ## Prometheus with the alert rules scraping two workers: a reader stalls, a worker stops; prints each alert firing and resolving
	@scripts/bootstrap.sh
	@scripts/kafka.sh ensure
	.venv/bin/python -m tests.alerts_demo $(ARGS)

bench:  ## the benchmarks (figures, not asserts)
	@scripts/bootstrap.sh
	@scripts/kafka.sh ensure
	.venv/bin/python -m bench.accounts
	.venv/bin/python -m bench.commands
	.venv/bin/python -m bench.saga

bench-peers:  ## the project's fold vs raw aiokafka vs Quix Streams, one topic (own venv: .venv-bench)
	@scripts/kafka.sh ensure
	@test -x .venv-bench/bin/python || python3.11 -m venv .venv-bench
	@.venv-bench/bin/pip install -q -e '.[bench]'
	.venv-bench/bin/python -m bench.peers $(ARGS)

failover:  ## what clients wait when a worker crashes and restarts, crashes for good, or is rolled (ARGS="--rate 20")
	@scripts/bootstrap.sh
	@scripts/kafka.sh ensure
	.venv/bin/python -m bench.failover $(ARGS)

startup-loop:  ## the start-up race and the outage test, STARTUP_RUNS times (default 20)
	@scripts/bootstrap.sh
	@scripts/kafka.sh ensure
	STARTUP_RUNS=$${STARTUP_RUNS:-20} .venv/bin/pytest -q tests/integration/test_startup.py

crash-loop:  ## SIGKILL twice (the second restart on an empty data dir), CRASH_RUNS times (default 10)
	@scripts/bootstrap.sh
	@scripts/kafka.sh ensure
	CRASH_RUNS=$${CRASH_RUNS:-10} .venv/bin/pytest -q tests/integration/test_crash.py

kill-matrix:  ## SIGKILL a worker at each write-path and saga-batch point (own, then empty data dir), KILL_RUNS times (default 20)
	@scripts/bootstrap.sh
	@scripts/kafka.sh ensure
	KILL_RUNS=$${KILL_RUNS:-20} .venv/bin/pytest -q tests/integration/test_kill_matrix.py

saga-kill-loop:  ## SIGKILL a worker of two mid-saga (120 multi-line orders), each run on a fresh system, SAGA_KILL_RUNS times (default 20)
	@scripts/bootstrap.sh
	@scripts/kafka.sh ensure
	@runs=$${SAGA_KILL_RUNS:-20}; for n in $$(seq 1 $$runs); do \
	  echo "== run $$n of $$runs"; \
	  .venv/bin/pytest -q -p no:cacheprovider tests/integration/test_order_saga.py -k worker_killed || exit 1; \
	done; echo "saga-kill-loop: $$runs of $$runs passed"

soak:  ## 3 brokers, 3 workers, shop traffic and faults (broker, worker, rolling) for 10 min, then the audit (ARGS="--minutes 3")
	@scripts/bootstrap.sh
	.venv/bin/python -m bench.soak $(ARGS)

soak-read:  ## SIGKILL the folds at each fault point (own, then empty data dir), SOAK_RUNS times (default 10)
	@scripts/bootstrap.sh
	@scripts/kafka.sh ensure
	SOAK_RUNS=$${SOAK_RUNS:-10} .venv/bin/pytest -q tests/integration/test_fold_crash.py tests/integration/test_order_views_crash.py

broker-start:  ## the local single-node Kafka broker (scripts/kafka.sh), in the background
	@scripts/kafka.sh start

broker-stop:  ## stop that broker (its log stays in .kafka)
	@scripts/kafka.sh stop

cluster-start:  ## a 3-broker local cluster (scripts/kafka-cluster.sh); run workers with SHOP_REPLICATION_FACTOR=3
	@scripts/kafka-cluster.sh start
	@echo "KAFKA_BOOTSTRAP_SERVERS=$$(scripts/kafka-cluster.sh bootstrap) SHOP_REPLICATION_FACTOR=3"

cluster-stop:  ## stop that cluster (its data stays in .kafka/cluster-<port>)
	@scripts/kafka-cluster.sh stop

clean:  ## local data: worker tables and the local broker's log (the broker must be stopped)
	rm -rf .data .run .kafka
