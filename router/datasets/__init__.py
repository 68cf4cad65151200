"""Real ticket datasets bundled with opsroute, with their source and licence notes."""
