"""The ways in: Slack, the console shell, the command line."""
