"""Connectors that read tickets from ITSM systems and write assignments back."""
