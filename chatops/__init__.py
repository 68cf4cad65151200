"""The Slack app: escalation messages, review actions and override commands."""
