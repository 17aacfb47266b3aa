"""docs/configuration.md, generated: every variable the shop reads, in one page.

    python -m app.configuration_doc            # print the page
    python -m app.configuration_doc --write    # regenerate docs/configuration.md
    python -m app.configuration_doc --check    # exit 1 if the committed page is stale

The settings come from their declarations in app/settings.py; the scripts' own variables
and the tests' are declared below (the scripts are bash, the tests read theirs where they
run), each with its default and one line of help. Which files read them is found in the
files themselves, so the page cannot say a script reads a variable it does not.
tests/unit/test_configuration_doc.py checks that the page is current and that every
variable the code and the scripts read is declared.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic.fields import FieldInfo

from app.env_settings import expected, extra, variables
from app.settings import DECLARED, GROUPS, MiB

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "configuration.md"
WRITE_COMMAND = "python -m app.configuration_doc --write"


@dataclass(frozen=True)
class Variable:
    """A variable that is no setting of the worker or the CLI: a script's, or a test's."""

    name: str
    default: str
    """As the page shows it (Markdown): `a value`, or words."""
    meaning: str


SCRIPT_VARIABLES = (
    Variable("PYTHON", "`python3.11`", "the interpreter the .venv is made with"),
    Variable("WEB_PORT_1", "`6066`", "the first worker's HTTP port (`make start`)"),
    Variable("WEB_PORT_2", "`6067`", "the second worker's HTTP port (`make start`)"),
    Variable("TRAFFIC_RATE", "`2`", "sample commands a second (`make start`; 0: no traffic)"),
    Variable("TRAFFIC_ACCOUNTS", "`20`", "accounts the sample traffic uses (`make start`)"),
    Variable("START_TIMEOUT", "`180`", "seconds `make start` waits for the workers' health"),
    Variable("KAFKA_PORT", "`9092`", "the local broker's client port"),
    Variable("KAFKA_CONTROLLER_PORT", "`9093`", "the local broker's KRaft controller port"),
    Variable("KAFKA_DATA_DIR", "`.kafka/<KAFKA_PORT>`", "the local broker's log, config and pid"),
    Variable(
        "KAFKA_CACHE_DIR",
        "`<XDG_CACHE_HOME>/shop-kafka/<version>`",
        "the broker's jars, resolved once from Maven Central",
    ),
    Variable(
        "KAFKA_HEAP_OPTS",
        "`-Xms512m -Xmx2g` (a cluster node: `-Xms256m -Xmx1g`)",
        "the broker JVM's heap",
    ),
    Variable("KAFKA_START_TIMEOUT", "`90`", "seconds to wait for a broker to answer"),
    Variable("KAFKA_NODE_ID", "`1`", "this broker's node id"),
    Variable(
        "KAFKA_QUORUM_VOTERS",
        "`<KAFKA_NODE_ID>@127.0.0.1:<KAFKA_CONTROLLER_PORT>`",
        "the KRaft controllers, id@host:port,... (default: this node alone)",
    ),
    Variable(
        "KAFKA_CLUSTER_ID",
        "a random one",
        "the id storage is formatted with, the same on every node (first start only)",
    ),
    Variable(
        "KAFKA_INTERNAL_REPLICATION",
        "`1`",
        "replicas of the broker's internal topics and its default replication factor",
    ),
    Variable(
        "KAFKA_SASL_SSL_PORT",
        "none",
        "a SASL_SSL listener on this port (TLS, then a PLAIN or SCRAM login), for testing",
    ),
    Variable(
        "KAFKA_SSL_PORT",
        "none",
        "an SSL listener on this port that requires a client certificate, for testing",
    ),
    Variable(
        "KAFKA_BROKER_KEYSTORE",
        "none",
        "the broker's PEM private key and certificate chain (needed by the secured listeners)",
    ),
    Variable(
        "KAFKA_BROKER_TRUSTSTORE",
        "none",
        "PEM CA certificates that client certificates must chain to (KAFKA_SSL_PORT)",
    ),
    Variable(
        "KAFKA_SASL_USERS",
        "none",
        "`name:password,...`: the secured listeners' SCRAM and PLAIN logins",
    ),
    Variable("KAFKA_CLUSTER_NODES", "`3`", "nodes of the local cluster"),
    Variable(
        "KAFKA_CLUSTER_PORT",
        "`29092`",
        "the cluster's port base: node N answers on base+N-1, its controller on base+100+N-1",
    ),
    Variable(
        "KAFKA_CLUSTER_DIR", "`.kafka/cluster-<base>`", "the cluster's data, a directory per node"
    ),
    Variable("LINES_TO_SHOW", "`100`", "lines `scripts/kafka.sh logs` shows before following"),
    Variable("SHOP_TOOLS_DIR", "`<XDG_CACHE_HOME>/shop-tools`", "the Go-built tools, built once"),
    Variable("XDG_CACHE_HOME", "`~/.cache`", "where the broker's jars and the tools are cached"),
)
"""What scripts/*.sh and the Makefile read for themselves."""

TEST_VARIABLES = (
    Variable(
        "SHOP_FAULT",
        "empty",
        "named fault points that kill, stall or fail a worker at an exact step (app/faults.py)",
    ),
    Variable(
        "SHOP_FAIL_FIRST",
        "empty",
        "`agent:N`: that agent's handler fails its first N attempts (app/faults.py)",
    ),
    Variable("SHOP_KEEP_TOPICS", "empty", "set: a test system's topics are kept, to read them"),
    Variable(
        "TEST_PROCESSES",
        "`3`",
        "test files `make test` runs at a time (pytest-xdist); `0`: one process, in order",
    ),
    Variable("STARTUP_RUNS", "`1` (`make startup-loop`: `20`)", "runs of the start-up race tests"),
    Variable("CRASH_RUNS", "unset (`make crash-loop`: `10`)", "runs of the SIGKILL crash tests"),
    Variable("KILL_RUNS", "`0` (`make kill-matrix`: `20`)", "runs of the whole kill matrix"),
    Variable("SAGA_KILL_RUNS", "`20`", "runs of `make saga-kill-loop`"),
    Variable("SOAK_RUNS", "unset (`make soak-read`: `10`)", "runs of the folds' crash soak"),
    Variable("SCHEMATHESIS_SEED", "`20261130`", "the API fuzzer's seed"),
    Variable("SCHEMATHESIS_EXAMPLES", "`10`", "the API fuzzer's examples per operation"),
    Variable("DASHBOARD_SCREENSHOT", "a temporary file", "where the dashboard test saves its view"),
    Variable("DOCS_SCREENSHOT", "a temporary file", "where the API docs test saves its view"),
)
"""What only tests, soaks and fault injection read: never set in production. The fault
points stay in app/faults.py, the one module that breaks a worker on purpose."""

SHELL_VARIABLES = frozenset({"BASH_SOURCE", "BASH_REMATCH"})
"""Set by bash itself: read by the scripts, set by no one."""

# --- where the variables are read --------------------------------------------------------

SCRIPTS = ("scripts/*.sh", "Makefile")
PYTHON = ("app", "agents", "web", "tables", "domain", "models", "bench", "tests")
SCRIPT_READ = re.compile(r"\$\{([A-Z][A-Z0-9_]*)")
PYTHON_READ = re.compile(
    r"""(?:os\.environ\.get\(\s*|os\.environ\[\s*|os\.getenv\(\s*)"([A-Z][A-Z0-9_]*)"|"""
    r""""([A-Z][A-Z0-9_]*)"\s+(?:not\s+)?in\s+os\.environ"""
)


def files(patterns: Iterable[str], root: Path) -> list[Path]:
    return sorted({path for pattern in patterns for path in root.glob(pattern)})


def reads(root: Path = ROOT) -> dict[str, list[str]]:
    """variable -> the files reading it by name: `${VAR` in the scripts and the Makefile,
    os.environ / getenv in the Python code (a setting's reads are pydantic's, unnamed)."""
    found: dict[str, set[str]] = {}
    sources = [(path, SCRIPT_READ) for path in files(SCRIPTS, root)] + [
        (path, PYTHON_READ) for path in files((f"{top}/**/*.py" for top in PYTHON), root)
    ]
    for path, pattern in sources:
        for match in pattern.finditer(path.read_text()):
            name = next(group for group in match.groups() if group)
            found.setdefault(name, set()).add(str(path.relative_to(root)))
    return {name: sorted(paths) for name, paths in sorted(found.items())}


def settings_fields() -> dict[str, FieldInfo]:
    """variable -> field, of every setting of every class in app/settings.py (a variable
    two classes read, API_TOKEN, is one declaration: the first class's field)."""
    fields: dict[str, FieldInfo] = {}
    for model in DECLARED:
        for name, field in variables(model).items():
            fields.setdefault(name, field)
    return fields


def undeclared(root: Path = ROOT) -> dict[str, list[str]]:
    """Variables read somewhere and declared nowhere -> where they are read."""
    declared = (
        set(settings_fields())
        | {v.name for v in (*SCRIPT_VARIABLES, *TEST_VARIABLES)}
        | SHELL_VARIABLES
    )
    return {name: where for name, where in reads(root).items() if name not in declared}


# --- the page ------------------------------------------------------------------------

GROUP_NOTES = {
    "Kafka": "TLS trusts the system's CA certificates unless `KAFKA_SSL_CAFILE` is set.",
    "Worker": "`F_DATADIR` is read when the worker starts; the others when it is imported.",
    "Analytics": (
        "Whole seconds, checked together at start (domain/analytics.py's Config): the hop "
        "size a multiple of the hop step, the retention at least the grace, the two "
        "tumbling windows of different sizes."
    ),
    "Command line": "Read by `shop` when a command runs, so `--help` never shows the token.",
}


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def shown_default(field: FieldInfo) -> str:
    if "shown_default" in extra(field):
        return str(extra(field)["shown_default"])
    value = field.get_default(call_default_factory=False)
    if value == "" or value is None:
        return "empty"
    if isinstance(value, bool):
        return "`on`" if value else "`off`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, int) and value >= MiB and value % MiB == 0:
        return f"`{value}` ({value // MiB} MiB)"
    if isinstance(value, int) and value >= 1024 and value % 1024 == 0:
        return f"`{value}` ({value // 1024} KiB)"
    return f"`{value}`"


def settings_section(group: str, fields: dict[str, FieldInfo]) -> list[str]:
    lines = [f"## {group}", ""]
    if group in GROUP_NOTES:
        lines += [GROUP_NOTES[group], ""]
    lines += ["| variable | default | accepted | meaning |", "|---|---|---|---|"]
    for name, field in fields.items():
        if extra(field)["group"] == group:
            meaning = cell(field.description or "")
            lines.append(f"| `{name}` | {shown_default(field)} | {expected(field)} | {meaning} |")
    return [*lines, ""]


def variables_table(declared: Iterable[Variable], where: dict[str, list[str]]) -> list[str]:
    lines = ["| variable | default | meaning | read by |", "|---|---|---|---|"]
    for v in declared:
        readers = ", ".join(f"`{path}`" for path in where.get(v.name, []))
        lines.append(f"| `{v.name}` | {cell(v.default)} | {cell(v.meaning)} | {readers} |")
    return [*lines, ""]


def markdown(root: Path = ROOT) -> str:
    fields = settings_fields()
    where = reads(root)
    example = fields["KAFKA_LINGER_MS"]
    lines = [
        "# Configuration",
        "",
        f"<!-- Generated by `{WRITE_COMMAND}` from app/settings.py and "
        "app/configuration_doc.py: do not edit by hand. "
        "tests/unit/test_configuration_doc.py fails when it is stale. -->",
        "",
        "Every setting is an environment variable, read once when the worker starts (the "
        "`shop` CLI's when a command runs). An empty variable is the same as an unset one. "
        "A bad value stops the worker at start with one line naming the variable, what it "
        "must be and what it was, such as "
        f"`setting KAFKA_LINGER_MS must be {expected(example)}, got '5000'`.",
        "",
    ]
    for group in GROUPS:
        lines += settings_section(group, fields)
    scripts_read_settings = [
        f"`{name}` ({', '.join(f'`{path}`' for path in paths if not path.endswith('.py'))})"
        for name, paths in where.items()
        if name in fields and any(not path.endswith(".py") for path in paths)
    ]
    lines += [
        "## Scripts",
        "",
        "Read by `scripts/*.sh` and the Makefile for themselves (`make start`, the local "
        "broker and cluster, the dev setup). The scripts also read "
        + ", ".join(scripts_read_settings)
        + ", as the workers do.",
        "",
        *variables_table(SCRIPT_VARIABLES, where),
        "## Tests and soaks only",
        "",
        "Never set in production: they break a worker on purpose (the fault points stay in "
        "`app/faults.py`, the one module that does) or size a test run.",
        "",
        *variables_table(TEST_VARIABLES, where),
    ]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.configuration_doc", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"regenerate {PAGE.name}")
    mode.add_argument("--check", action="store_true", help=f"exit 1 if {PAGE.name} is stale")
    parser.add_argument("--page", type=Path, default=PAGE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    page = markdown()
    if args.write:
        args.page.write_text(page)
    elif args.check:
        if not args.page.exists() or args.page.read_text() != page:
            print(f"{args.page} is stale: run {WRITE_COMMAND}", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
