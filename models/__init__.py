"""Pydantic models: the shapes of commands, events, replies and views."""
