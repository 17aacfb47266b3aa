"""Business rules as pure deciders.

decide(command, state) -> events; evolve(state, event) -> state. No Kafka here.
"""
