"""The composition root: `faust -A app.worker worker` starts a worker.

Importing this module wires everything: each module below declares its topics,
tables, readers or web views on the one faust App (app/main.py).
"""

import agents.accounts
import agents.analytics
import agents.inventory
import agents.orders
import agents.rebuilds
import agents.redrives
import agents.services
import web.accounts
import web.analytics
import web.contracts
import web.dashboard
import web.dead_letters
import web.inventory
import web.openapi
import web.ops
import web.orders
from app import provisioning
from app.main import app

__all__ = ["app"]
