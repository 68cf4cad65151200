"""opsroute's router: the core that turns ITSM records into routing decisions."""

__version__ = "0.1.0"
