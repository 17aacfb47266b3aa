"""The shop application: `faust -A app worker` starts a worker.

Importing the package wires everything: each module below declares its
topics, tables, agents or web views on the one faust App.
"""

import agents.accounts  # noqa: F401
import web.accounts
import web.ops  # noqa: F401
from app.main import app

__all__ = ["app"]
