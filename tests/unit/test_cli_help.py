"""`shop --help` and every subcommand's help, run as an operator runs them.

Each help is `shop ... --help` as the command line runs it (in this process; one test
runs the real `python -m app.cli --help` process and compares), checked against the parser
tree that `app.cli.build_parser()` builds: every command it registers is listed with a
one-line description, every option is shown with a help string, every stated default is
the parser's own, and a bad value is refused by argparse (exit 2) before anything is sent.
No worker or broker is needed: argparse answers before any command runs.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from app.cli import build_parser, main

PROJECT = Path(__file__).resolve().parents[2]

SECRET_TOKEN = "sentinel-secret-token-0451"
ENVIRONMENT = {
    # a URL no default in the code has: the help must show the one the parser really took
    "SHOP_URL": "http://sentinel-worker.invalid:6099",
    # a token no help may ever print
    "API_TOKEN": SECRET_TOKEN,
    # should a bad value ever get past the parser, there is no broker there to disturb
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
    # no wrapping, so a help string reads in the output as it reads in the parser
    "COLUMNS": "1000",
}
NOWHERE = "http://127.0.0.1:9"
"""A worker URL where nothing answers, for the commands that must never get that far."""

Command = tuple[str, ...]


def parser_tree(
    parser: argparse.ArgumentParser, command: Command = ()
) -> Iterator[tuple[Command, argparse.ArgumentParser]]:
    """Every parser under `parser`, by the words that reach it (`()` is `shop` itself)."""
    yield command, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield from parser_tree(subparser, (*command, name))


def subcommands_action(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[Any]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action


with mock.patch.dict(os.environ, ENVIRONMENT):  # the defaults the processes below will see
    PARSER = build_parser()
PARSERS = dict(parser_tree(PARSER))
RUNNABLE = sorted(command for command, parser in PARSERS.items() if parser.get_default("run"))
"""The commands that do something (the others only pick a subcommand)."""


@cache
def shop(*args: str) -> subprocess.CompletedProcess[str]:
    """`shop ARGS` in this process, with the environment an operator's shell would give:
    its exit status and output (argparse answers before any command runs). One test
    below runs the real command, as a process, to hold this stand-in to it."""
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, ENVIRONMENT), redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
            if isinstance(stop.code, str):
                print(stop.code, file=err)
    return subprocess.CompletedProcess(["shop", *args], code, out.getvalue(), err.getvalue())


def test_the_real_command_prints_the_same_help_as_the_stand_in() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "app.cli", "--help"],
        cwd=PROJECT,
        env={**os.environ, **ENVIRONMENT},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    assert flat(process.stdout) == flat(shop("--help").stdout)


def flat(text: str) -> str:
    return " ".join(text.split())


def shown_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The action's help as argparse prints it, %(default)s and the like filled in."""
    return parser._get_formatter()._expand_help(action)


def label(command: Command) -> str:
    return " ".join(("shop", *command))


def test_the_tree_is_what_the_cli_offers() -> None:
    # guards the walk itself: a tree that lost its subcommands would pass everything below
    assert {command[0] for command in RUNNABLE} == {
        "worker",
        "health",
        "lag",
        "traffic",
        "load",
        "dead-letters",
        "rebuild",
        "leave",
    }
    assert {
        ("dead-letters", action)
        for action in ("list", "retry", "retry-matching", "resolve", "discard")
    } <= set(RUNNABLE)


def test_shop_help_lists_every_command_with_a_one_line_description() -> None:
    result = shop("--help")
    assert result.returncode == 0, result.stderr
    action = subcommands_action(PARSER)
    descriptions = {choice.dest: choice.help for choice in action._choices_actions}
    for name in action.choices:
        description = descriptions.get(name)
        assert description, f"`shop {name}` has no one-line description in `shop --help`"
        assert "\n" not in description
        listed = re.compile(rf"^ +{re.escape(name)}\s+{re.escape(description)}$", re.MULTILINE)
        assert listed.search(result.stdout), f"`shop {name}` is not listed:\n{result.stdout}"


@pytest.mark.parametrize("command", list(PARSERS), ids=label)
def test_help_shows_the_description_and_every_option(command: Command) -> None:
    parser = PARSERS[command]
    result = shop(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith(f"usage: {label(command)} ")
    output = flat(result.stdout)
    assert parser.description, f"{label(command)} has no description"
    assert flat(parser.description) in output
    for action in parser._actions:
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help != argparse.SUPPRESS, f"{name} has no help"
        assert flat(shown_help(parser, action)) in output, f"{name}'s help is not shown"
        if action.option_strings:
            for option in action.option_strings:
                assert re.search(rf"(^|\s){re.escape(option)}\b", result.stdout), option
        else:  # a positional shows as its metavar, else as its choices
            choices = "{" + ",".join(map(str, action.choices or ())) + "}"
            assert (action.metavar if isinstance(action.metavar, str) else choices) in output


@pytest.mark.parametrize("command", RUNNABLE, ids=label)
def test_description_says_what_it_talks_to_and_its_exit_status(command: Command) -> None:
    description = PARSERS[command].description or ""
    assert "HTTP API" in description or "Kafka" in description
    assert "Exit status: 0" in description


@pytest.mark.parametrize("command", list(PARSERS), ids=label)
def test_stated_defaults_are_the_parsers_own(command: Command) -> None:
    parser = PARSERS[command]
    output = flat(shop(*command, "--help").stdout)
    for action in parser._actions:
        name = "/".join(action.option_strings) or action.dest
        raw = action.help or ""
        default = action.default
        # by identity: a default of 0 is one to state, though 0 == False
        unset = default is None or default is False or default is argparse.SUPPRESS
        if unset or isinstance(action, argparse._HelpAction):
            # nothing to state; "%(default)s" would print None or False
            assert "%(default)" not in raw, f"{name} states a default it does not have"
            continue
        # stated through argparse, so the help cannot drift from the code
        assert "(default: %(default)s)" in raw, f"{name} does not state its default"
        assert f"(default: {default})" in output, f"{name}'s stated default is not {default!r}"
        literal = raw.replace("%(default)s", "")
        for spelling in {str(default), f"{default:g}" if isinstance(default, float) else ""}:
            assert not spelling or not re.search(rf"\b{re.escape(spelling)}\b", literal), (
                f"{name}'s help spells its default out as {spelling!r}: it would drift"
            )


@pytest.mark.parametrize("command", list(PARSERS), ids=label)
def test_help_never_prints_the_api_token(command: Command) -> None:
    assert SECRET_TOKEN not in shop(*command, "--help").stdout


@pytest.mark.parametrize("command", ["dead-letters", "health", "lag"])
def test_shows_the_shop_url_it_will_use(command: str) -> None:
    # the default comes from $SHOP_URL; the help shows that one, not the built-in
    output = shop(command, "--help").stdout
    assert f"(default: {ENVIRONMENT['SHOP_URL']})" in flat(output)


def test_version_is_the_installed_packages() -> None:
    result = shop("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"shop {metadata.version('shop')}\n"


@pytest.mark.parametrize("command", list(PARSERS), ids=label)
def test_time_and_rate_options_state_their_unit(command: Command) -> None:
    parser = PARSERS[command]
    for action in parser._actions:
        # every float option here is a time or a rate: seconds, or per second
        if action.option_strings and takes_a_number(action.type):
            assert "second" in (action.help or ""), f"{action.option_strings} has no unit"


def takes_a_number(kind: Any) -> bool:
    """Whether an option's type makes a float of "1" (a point in time is refused)."""
    try:
        return callable(kind) and isinstance(kind("1"), float)
    except (argparse.ArgumentTypeError, ValueError):
        return False


@pytest.mark.parametrize("command", list(PARSERS), ids=label)
def test_every_choice_is_explained(command: Command) -> None:
    parser = PARSERS[command]
    for action in parser._actions:
        if action.choices and not isinstance(action, argparse._SubParsersAction):
            for choice in action.choices:
                assert f"{choice}:" in (action.help or ""), f"{action.dest}: {choice} unexplained"


BAD_VALUES: list[tuple[Command, tuple[str, ...], str]] = [
    (
        ("traffic",),
        ("--url", NOWHERE, "--duration", "1", "--rate", "0"),
        "argument --rate: must be greater than zero",
    ),
    (
        ("traffic",),
        ("--url", NOWHERE, "--duration", "1", "--accounts", "many"),
        "argument --accounts: 'many' is not a whole number",
    ),
    (("load",), ("--url", ",", "--orders", "1"), "argument --url: needs at least one URL"),
    (
        ("load",),
        ("--url", NOWHERE, "--orders", "0"),
        "argument --orders: must be greater than zero",
    ),
    (("dead-letters", "list"), ("--limit", "0"), "argument --limit: must be greater than zero"),
    (("dead-letters", "list"), ("--limit", "ten"), "argument --limit: 'ten' is not a whole number"),
    (("dead-letters", "retry"), (), "the following arguments are required: ID"),
    (
        ("dead-letters", "list"),
        ("--failed-after", "2026-03-01T12:00:00"),
        "argument --failed-after: '2026-03-01T12:00:00' has no time zone (add Z or +HH:MM)",
    ),
    (("dead-letters", "list"), ("--status", "lost"), "argument --status: invalid choice: 'lost'"),
    (
        ("dead-letters", "retry-matching"),
        ("--failed-before", "yesterday"),
        "argument --failed-before: 'yesterday' is not an ISO 8601 date-time",
    ),
    (
        ("dead-letters", "retry-matching"),
        ("--through", "-1"),
        "argument --through: must be zero or more",
    ),
    (("dead-letters", "resolve"), ("a:0:1:x",), "the following arguments are required: --reason"),
    (("dead-letters", "discard"), ("--reason", "dup"), "the following arguments are required: ID"),
    (("rebuild",), ("nonsense",), "argument read_model: invalid choice: 'nonsense'"),
    (
        ("rebuild",),
        ("accounts", "--timeout", "-1"),
        "argument --timeout: must be greater than zero",
    ),
    (("rebuild",), ("accounts", "--timeout", "soon"), "argument --timeout: 'soon' is not a number"),
    (("worker",), ("--port", "0"), "argument --port/-p: must be a port number from 1 to 65535"),
    (("worker",), ("--port", "http"), "argument --port/-p: 'http' is not a whole number"),
    (
        ("worker",),
        ("--instance-id", "a b"),
        "argument --instance-id: 1-128 characters, no spaces and no `/`",
    ),
    (("worker",), ("--log-level", "loud"), "argument --log-level/-l: invalid choice: 'loud'"),
    (("leave",), (), "the following arguments are required: NAME"),
    (("leave",), ("w1", "a/b"), "argument NAME: 1-128 characters, no spaces and no `/`"),
    (
        ("health",),
        ("--url", NOWHERE, "--timeout", "0"),
        "argument --timeout: must be greater than zero",
    ),
    (
        ("lag",),
        ("--url", NOWHERE, "--timeout", "never"),
        "argument --timeout: 'never' is not a number",
    ),
]


def test_every_command_has_a_bad_value_case() -> None:
    assert {command for command, _, _ in BAD_VALUES} == set(RUNNABLE)


@pytest.mark.parametrize(
    ("command", "args", "message"),
    BAD_VALUES,
    ids=[" ".join((*command, *args)) for command, args, _ in BAD_VALUES],
)
def test_a_bad_value_is_refused_before_anything_is_sent(
    command: Command, args: tuple[str, ...], message: str
) -> None:
    # --url goes before the action, and points where nothing answers, should it get that far
    prefix = (
        ("dead-letters", "--url", NOWHERE, *command[1:])
        if command[0] == "dead-letters"
        else command
    )
    result = shop(*prefix, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith(f"usage: {label(command)} ")
    assert f"{label(command)}: error: {message}" in result.stderr
