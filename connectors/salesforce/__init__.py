"""Salesforce connector: Outbound Message webhooks and REST write-back."""

from __future__ import annotations

from connectors.salesforce.connector import SalesforceConnector, create_connector
from connectors.salesforce.outbound import ACK_BODY, soap_fault

__all__ = ["ACK_BODY", "SalesforceConnector", "create_connector", "soap_fault"]
