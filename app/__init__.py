"""The shop application: `faust -A app worker` starts a worker.

Importing the package wires everything: topics, tables, agents, web views.
"""

# Registration by import: each module declares its topics, tables, agents or views.
import agents.accounts  # noqa: F401
import web.accounts  # noqa: F401
from app.main import app

__all__ = ["app"]
