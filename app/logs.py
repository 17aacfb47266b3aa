"""The worker's log lines: faust's text, or (LOG_FORMAT=json) one JSON object a line.

faust's worker sets logging up through mode (`mode.utils.logging.setup_logging`):
a handler at faust's `-l` level, formatted by the App's `logging_config` when it
has one (merged into mode's own), then stdout and stderr redirected to a logger.
So the JSON format is a formatter that `logging_config` puts on mode's handler,
LOG_LEVEL reaches it through the Worker class (`ShopWorker`: faust's `-l` is
replaced by the setting, so one variable sets the level wherever the worker
runs), and what faust prints rather than logs (its start-up banner, the
spinner's "OK", the -INT- warning) is logged or written as JSON too.

Each line says which worker wrote it and, where there is one, the reader or
agent, topic, partition, offset and correlation id: the engine and the command
sides set them for a batch (`LOG_CONTEXT`), and a line about one record or
command names it in its `extra`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
import socket
import sys
import time
from contextvars import ContextVar
from typing import Any

import faust

from app.settings import settings

LOG_CONTEXT: ContextVar[dict[str, Any] | None] = ContextVar("shop_log_context", default=None)
"""What the current batch is (reader or agent, topic, partition, offset): set by the
engine and the command sides around a batch; asyncio gives each task its own."""

WORKER = settings.instance_id
"""The worker's name in every line: SHOP_INSTANCE_ID, or (set by ShopWorker) its
host and web port, as the command bus names its reply topic."""

SENTINEL_SECONDS = 0.1
"""How long the worker's loop runs on once every service has stopped (mode: 1 s)."""

_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
"""A LogRecord's own attributes: any other one came in a call's `extra`."""


def json_line(
    level: str, logger: str, message: str, created: float | None = None, **fields: Any
) -> str:
    """One line of the JSON log."""
    at = time.time() if created is None else created
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"
    line = {"time": stamp, "level": level, "logger": logger, "message": message}
    if WORKER:
        line["worker"] = WORKER
    line.update(fields)
    return json.dumps(line, default=str, ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: time, level, logger, message, worker, the batch's
    context and the call's extras; a traceback is one string field, not more lines."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = dict(LOG_CONTEXT.get() or {})
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                fields[key] = value
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        message = record.getMessage().strip()
        return json_line(
            record.levelname.lower(), record.name, message, created=record.created, **fields
        )


def logging_config() -> dict[str, Any] | None:
    """The App's `logging_config`: merged by mode into its own, so its handler (stderr, or
    faust's `-f` file) and level stay, formatted as JSON. None: faust's text."""
    if settings.log_format != "json":
        return None
    formatter = {"()": f"{__name__}.JsonFormatter"}
    return {"merge": True, "formatters": {"default": formatter, "colored": formatter}}


class ShopWorker(faust.Worker):
    """faust's Worker at LOG_LEVEL, naming itself in every line; with JSON logs, what it
    would print (the spinner, "OK ^", -INT-) is logged instead. It exits 0.1 s after its
    services have stopped, not mode's second, and without the interpreter's teardown: a
    restart waits for that exit."""

    def __init__(self, *services: Any, **kwargs: Any) -> None:
        kwargs["loglevel"] = settings.log_level
        super().__init__(*services, **kwargs)
        global WORKER
        WORKER = WORKER or f"{self.app.conf.web_host}-{self.app.conf.web_port}"
        if settings.log_format == "json":
            self.spinner = None

    async def _sentinel_task(self) -> None:
        # mode runs this before it closes the loop, for callbacks still due: one turn of
        # the loop is what they need (every service, the producer's flush included, has
        # stopped by then); mode's own sleeps a second, a second of every restart
        await asyncio.sleep(SENTINEL_SECONDS)

    def _shutdown_loop(self) -> None:
        super()._shutdown_loop()  # re-raises what crashed the worker, if anything did
        if sys.exc_info()[1] is not None:
            return  # shut down on the way out of a failed start: its error sets the status
        # every service has stopped: its stores are closed, the producer flushed. What is
        # left is the interpreter tearing down its modules and objects, 0.3-0.4 s that a
        # restart would wait for, with nothing to save
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    def say(self, msg: str) -> None:
        if settings.log_format == "json":
            if msg.strip():
                logging.getLogger("faust.worker").info(msg.strip())
            return
        super().say(msg)

    def carp(self, msg: str) -> None:
        if settings.log_format == "json":
            logging.getLogger("faust.worker").warning(msg.strip())
            return
        super().carp(msg)


def _banner(command: Any, worker: Any) -> None:
    """faust's start-up banner as one JSON line: the CLI prints it before the worker has
    set logging up, so it is written, not logged."""
    app = worker.app
    banner = {
        "id": app.conf.id,
        "transport": " ".join(str(url) for url in app.conf.broker),
        "store": str(app.conf.store),
        "web": str(app.web_server_url) if app.conf.web_enabled else None,
        "log": f"{worker.logfile or '-stderr-'} ({settings.log_level})",
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "platform": f"{platform.python_implementation()} {platform.python_version()}",
        "faust": faust.__version__,
    }
    command.say(json_line("info", "faust.worker", "faust worker starting", banner=banner))


def use_json_lines() -> None:
    """Before the worker starts: every line from here on is JSON. Python's warnings go
    through logging; lines logged before mode sets logging up (imports) are JSON too;
    faust's banner is one JSON line. (The banner is printed by faust's `worker` command,
    not the Worker: its hook `on_worker_created` is replaced.)"""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(handlers=[handler], level=settings.log_level.upper(), force=True)
    logging.captureWarnings(True)
    from faust.cli import worker as worker_command

    worker_command.worker.on_worker_created = _banner  # type: ignore[method-assign,assignment]
