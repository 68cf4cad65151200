"""Fake vendor HTTP servers on 127.0.0.1 that record every call they receive."""
