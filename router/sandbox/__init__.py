"""Fake ServiceNow, Jira and Salesforce APIs on 127.0.0.1, and `opsroute sandbox`.

The fakes implement the endpoints the connectors call, record every request and
can be set to fail, so tests drive the real client libraries against them and
the sandbox shows a round trip without vendor credentials. They import nothing
from `connectors`.
"""
