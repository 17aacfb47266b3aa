"""`shop leave NAME...`: workers that are not coming back leave the consumer group now.

    shop leave w3 [w4 ...]

A worker with a name (SHOP_INSTANCE_ID) is a static member of the group: when it
stops, the group keeps its partitions for it for KAFKA_SESSION_TIMEOUT, so a
restart under the same name moves nothing. That is what a restart wants, and what a
scale-down does not: the partitions of a worker that is gone for good wait out the
session timeout before anyone takes them. Leaving by name (Kafka's LeaveGroup v3,
KIP-345: what Kafka's admin `removeMembersFromConsumerGroup` sends) ends that wait at
once: the group rebalances, and the other workers take the partitions over. aiokafka
0.14 sends no LeaveGroup for a static member and has no v3 request: built here.

Run it once the worker has stopped: a worker still running is taken out too, and
joins again at its next heartbeat (its partitions move twice). It talks to Kafka
(KAFKA_BOOTSTRAP_SERVERS, the group SHOP_APP_ID), a line per name.

Exit status: 0 when every name left, 1 when one was not a member (stopped long ago,
or never started: its line says so), 2 when Kafka could not be asked.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from aiokafka.client import AIOKafkaClient, ConnectionGroup, CoordinationType
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Int16, Int32, Schema, String

from app.kafka_clients import client_options
from app.settings import settings
from app.worker_cli import instance_name

UNKNOWN_MEMBER_ID = ""
"""With a group instance id, the coordinator finds the member by that name."""


class LeaveGroupResponse_v3(Response):  # Kafka's names, as aiokafka's own
    API_KEY = 13
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        (
            "members",
            Array(
                ("member_id", String("utf-8")),
                ("group_instance_id", String("utf-8")),
                ("error_code", Int16),
            ),
        ),
    )


class LeaveGroupRequest_v3(RequestStruct):
    API_KEY = 13
    API_VERSION = 3
    RESPONSE_TYPE = LeaveGroupResponse_v3
    SCHEMA = Schema(
        ("group", String("utf-8")),
        ("members", Array(("member_id", String("utf-8")), ("group_instance_id", String("utf-8")))),
    )


class StaticLeave(Request[LeaveGroupRequest_v3]):
    """Members of `group`, by their group instance ids, leave it."""

    API_KEY = 13

    def __init__(self, group: str, names: Sequence[str]) -> None:
        self.group = group
        self.names = list(names)

    def build(self, request_struct_class: type[LeaveGroupRequest_v3]) -> LeaveGroupRequest_v3:
        members = [(UNKNOWN_MEMBER_ID, name) for name in self.names]
        return request_struct_class(self.group, members)


async def leave(group: str, names: Sequence[str]) -> dict[str, str | None]:
    """Each name -> None if it left, else why not (Kafka's error)."""
    client = AIOKafkaClient(**client_options())
    await client.bootstrap()
    try:
        coordinator = await client.coordinator_lookup(CoordinationType.GROUP, group)
        answer: Any = await client.send(
            coordinator, StaticLeave(group, names), group=ConnectionGroup.COORDINATION
        )
    finally:
        await client.close()
    if answer.error_code:
        error = for_code(answer.error_code)
        raise KafkaError(f"group {group}: {error.__name__}: {error.description}")
    outcome: dict[str, str | None] = {name: "no answer for it" for name in names}
    for _member_id, name, code in answer.members:
        outcome[name] = None if code == 0 else _why(code)
    return outcome


def _why(code: int) -> str:
    error = for_code(code)
    if error.__name__ == "UnknownMemberIdError":
        return "not a member (it left, its session timed out, or it never started)"
    return f"{error.__name__}: {error.description}"


def run_leave(args: argparse.Namespace) -> int:
    group = settings.app_id
    try:
        outcome = asyncio.run(leave(group, args.names))
    except (KafkaError, OSError) as error:
        print(
            f"shop leave: could not ask Kafka ({settings.bootstrap_servers}): {error}",
            file=sys.stderr,
        )
        return 2
    for name, why in outcome.items():
        print(f"{name}: left {group}" if why is None else f"{name}: {why}")
    return 0 if all(why is None for why in outcome.values()) else 1


def add_leave_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "leave",
        help="named workers that are not coming back leave the group now (a scale-down)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "names",
        nargs="+",
        type=instance_name,
        metavar="NAME",
        help="a stopped worker's name (its SHOP_INSTANCE_ID)",
    )
    parser.set_defaults(run=run_leave)
