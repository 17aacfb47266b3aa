"""The folds of the event log, pure: the command side's memory and the read models."""
