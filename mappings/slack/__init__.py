"""Role and people mapping files of the Slack app."""
