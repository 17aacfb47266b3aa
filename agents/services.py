"""Every service of the topology on this worker: its command side and its agent.

domain/topology.py says what each service decides and reads; this module
turns each entry into a CommandSide (agents/command_side.py: its writers
decide the partitions this worker owns) and a faust agent `<name>-service`
reading all of the service's inputs as one stream (agents/service.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from agents.command_side import CommandSide
from agents.service import Service
from app.main import app
from app.topics import TOPICS, inputs
from domain.topology import TOPOLOGY, ServiceSpec

SIDE_OF: dict[str, CommandSide] = {}
"""The command side of each service, by service name."""


def _loop(service: Service, agent: str) -> Callable[[Any], Awaitable[None]]:
    async def run(stream: Any) -> None:
        await service.run(agent, stream)

    run.__name__ = f"run_{service.name}"
    return run


def _wire(spec: ServiceSpec) -> None:
    side = CommandSide(spec.decider, follows=TOPICS[spec.follows], events=TOPICS[spec.events])
    app.service(side)  # type: ignore[arg-type]
    SIDE_OF[spec.name] = side
    agent = f"{spec.name}-service"
    channel = inputs(*(TOPICS[name] for name in spec.inputs))
    app.agent(channel, name=agent)(_loop(Service(spec, side), agent))


for _spec in TOPOLOGY:
    _wire(_spec)
