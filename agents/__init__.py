"""Stream processors: thin loops that decode, call a rule, emit and update a table."""
