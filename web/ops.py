"""Operations endpoints: is this worker ready to serve, and what does it own."""

from __future__ import annotations

from typing import Any

from faust.web import Request, Response, View

from app.command_bus import command_bus
from app.main import app


def readiness() -> dict[str, object]:
    tables: Any = app.tables
    recovering = app.in_recovery or not tables.recovery.completed.is_set()
    actives = sorted(f"{tp.topic}:{tp.partition}" for tp in app.assignor.assigned_actives())
    ready = not recovering and bool(actives) and command_bus.reply_topic != ""
    return {
        "status": "ok" if ready else "starting",
        "recovering": recovering,
        "active_partitions": len(actives),
        "web": str(app.conf.canonical_url),
    }


@app.page("/health")
class HealthView(View):
    """200 when this worker owns partitions, has recovered its tables and takes commands."""

    async def get(self, request: Request) -> Response:
        body = readiness()
        return self.json(body, status=200 if body["status"] == "ok" else 503)
