"""HTTP: faust web views for commands and queries, and the dashboard's static files."""
