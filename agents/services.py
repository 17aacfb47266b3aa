"""Every service of the topology on this worker: its command side and its reader.

domain/topology.py says what each service decides and reads; this module
turns each entry into a CommandSide (agents/command_side.py: its writers
decide the partitions this worker owns) and a Service, the reader of all the
service's inputs on the engine (agents/service.py).
"""

from __future__ import annotations

from agents.command_side import CommandSide
from agents.service import Service
from app.main import app
from app.topics import TOPICS
from domain.topology import TOPOLOGY, ServiceSpec

SIDE_OF: dict[str, CommandSide] = {}
"""The command side of each service, by service name."""


def _wire(spec: ServiceSpec) -> None:
    commands = TOPICS[spec.commands] if spec.commands else None
    side = CommandSide(spec.decider, commands=commands, events=TOPICS[spec.events])
    app.service(side)  # type: ignore[arg-type]
    SIDE_OF[spec.name] = side
    app.service(Service(spec, side))  # type: ignore[arg-type]


for _spec in TOPOLOGY:
    _wire(_spec)
