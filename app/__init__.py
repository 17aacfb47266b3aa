"""The shop application: `faust -A app worker` starts a worker.

Importing the package wires everything: each module below declares its
topics, tables, agents or web views on the one faust App.
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
