"""Default mapping files shipped with opsroute (read with importlib.resources)."""
