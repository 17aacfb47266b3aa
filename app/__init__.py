"""The ground of the shop: the faust App, settings, topics, Kafka clients, the CLI.

Importing this package, or any module of it, builds nothing: the worker is wired
in one place, `app/worker.py` (`faust -A app.worker worker` starts one).
"""
