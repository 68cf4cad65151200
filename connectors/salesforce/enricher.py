"""Salesforce account context for tickets: tier, ARR, contract, seats, entitlement.

It reads the ticket's Account, its latest activated Contract and its active
Entitlements through simple-salesforce, with the credentials of the Salesforce
connector (`OPSROUTE_SALESFORCE_*`). Custom field names differ between orgs, so
they are options in `enrichment.yaml`: `tier_field` (default `Tier__c`),
`renewal_field` (`Renewal_Date__c`), `seats_field` (`Seats_Bought__c`) and
`sla_entitlements` (entitlement names that carry an SLA, default all). The option
`ca_bundle` names a CA file for orgs behind a private certificate authority.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.format import format_soql
from sqlalchemy.orm import Session, sessionmaker

from connectors.settings import SalesforceSettings
from router.enrichment.base import EnrichmentError
from router.enrichment.schemas import EnricherSpec
from router.schemas import Ticket

_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ACCOUNT_ID = re.compile(r"^001[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$")


class SalesforceAccountEnricher:
    """Look up a ticket's account in Salesforce."""

    fields = (
        "account.name",
        "account.tier",
        "account.arr",
        "account.account_manager",
        "account.renewal_date",
        "account.contract_end",
        "contract.seats_bought",
        "entitlement.name",
        "entitlement.sla_active",
    )

    def __init__(
        self,
        spec: EnricherSpec,
        *,
        settings: SalesforceSettings,
        http_session: requests.Session | None = None,
    ) -> None:
        self.name = spec.name
        options = spec.options
        self.tier_field = _field_option(options, "tier_field", "Tier__c", spec.name)
        self.renewal_field = _field_option(
            options, "renewal_field", "Renewal_Date__c", spec.name
        )
        self.seats_field = _field_option(
            options, "seats_field", "Seats_Bought__c", spec.name
        )
        self.sla_entitlements = options.get("sla_entitlements")
        self.settings = settings
        self._http_session = http_session
        self._ca_bundle = options.get("ca_bundle")
        self._client: Salesforce | None = None
        self._lock = threading.Lock()

    def cache_key(self, ticket: Ticket) -> str | None:
        """Return the Salesforce Account Id of the ticket, or None if it has none."""
        account = ticket.account or ""
        if ticket.source_system != "salesforce" or not _ACCOUNT_ID.match(account):
            return None
        return account

    def fetch(self, ticket: Ticket, *, timeout: float) -> dict[str, Any]:
        """Read the account, its contract and its entitlements."""
        account_id = self.cache_key(ticket)
        if account_id is None:
            return {}
        client = self._salesforce()
        account = self._one(
            client,
            format_soql(
                "SELECT Id, Name, AnnualRevenue, {:literal}, {:literal}, Owner.Email "
                "FROM Account WHERE Id = {}",
                self.tier_field,
                self.renewal_field,
                account_id,
            ),
            timeout,
        )
        if account is None:
            return {}
        contract = self._one(
            client,
            format_soql(
                "SELECT ContractNumber, EndDate, {:literal} FROM Contract "
                "WHERE AccountId = {} AND Status = 'Activated' "
                "ORDER BY EndDate DESC LIMIT 1",
                self.seats_field,
                account_id,
            ),
            timeout,
        )
        entitlements = self._all(
            client,
            format_soql(
                "SELECT Name, Status FROM Entitlement WHERE AccountId = {} "
                "AND Status = 'Active'",
                account_id,
            ),
            timeout,
        )
        return self._context(account, contract, entitlements)

    def _context(
        self,
        account: dict[str, Any],
        contract: dict[str, Any] | None,
        entitlements: list[dict[str, Any]],
    ) -> dict[str, Any]:
        owner = account.get("Owner") or {}
        names = [str(row.get("Name")) for row in entitlements]
        sla_names = self.sla_entitlements
        sla_active = any(sla_names is None or name in sla_names for name in names)
        contract = contract or {}
        return {
            "account": {
                "name": account.get("Name"),
                "tier": account.get(self.tier_field),
                "arr": account.get("AnnualRevenue"),
                "account_manager": owner.get("Email"),
                "renewal_date": account.get(self.renewal_field),
                "contract_end": contract.get("EndDate"),
            },
            "contract": {"seats_bought": contract.get(self.seats_field)},
            "entitlement": {
                "name": names[0] if names else None,
                "sla_active": sla_active,
            },
        }

    def _one(
        self, client: Salesforce, soql: str, timeout: float
    ) -> dict[str, Any] | None:
        records = self._all(client, soql, timeout)
        return records[0] if records else None

    def _all(
        self, client: Salesforce, soql: str, timeout: float
    ) -> list[dict[str, Any]]:
        try:
            # simple-salesforce passes extra keywords on to requests.
            result = client.query(soql, timeout=timeout)
        except SalesforceError as error:
            status = getattr(error, "status", 0) or 0
            raise EnrichmentError(
                f"{self.name}: Salesforce query failed with HTTP {status}",
                retryable=status >= 500,
            ) from None
        except requests.Timeout:
            raise EnrichmentError(
                f"{self.name}: Salesforce request timed out", retryable=True
            ) from None
        except requests.ConnectionError as error:
            raise EnrichmentError(
                f"{self.name}: connection failed ({type(error).__name__})",
                retryable=True,
            ) from None
        return list(result.get("records", []))

    def _salesforce(self) -> Salesforce:
        with self._lock:
            if self._client is None:
                self._client = self._login()
            return self._client

    def _login(self) -> Salesforce:
        session = self._http_session or requests.Session()
        if self._ca_bundle:
            session.trust_env = False
            session.verify = str(self._ca_bundle)
        settings = self.settings
        try:
            if settings.session_id is not None:
                return Salesforce(
                    instance_url=settings.instance_url,
                    session_id=settings.session_id.get_secret_value(),
                    version=settings.api_version,
                    session=session,
                )
            return Salesforce(
                username=settings.username,
                password=_secret(settings.password),
                security_token=_secret(settings.security_token),
                domain=settings.domain,
                version=settings.api_version,
                session=session,
            )
        except SalesforceError as error:
            raise EnrichmentError(
                f"{self.name}: Salesforce login failed ({type(error).__name__})"
            ) from None
        except (requests.Timeout, requests.ConnectionError) as error:
            raise EnrichmentError(
                f"{self.name}: Salesforce login failed ({type(error).__name__})",
                retryable=True,
            ) from None


def _field_option(options: dict[str, Any], key: str, default: str, name: str) -> str:
    value = str(options.get(key, default))
    if not _FIELD_NAME.match(value):
        raise ValueError(
            f"enricher {name!r}: options.{key} {value!r} is not a Salesforce field "
            "name; use letters, digits and underscores, such as Tier__c"
        )
    return value


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def create_enricher(
    spec: EnricherSpec,
    *,
    session_factory: sessionmaker[Session] | None = None,
    settings: SalesforceSettings | None = None,
    http_session: requests.Session | None = None,
) -> SalesforceAccountEnricher:
    """Build the enricher from the Salesforce connector's settings.

    Raises:
        ValueError: the Salesforce API credentials are not set.
    """
    settings = settings or SalesforceSettings.for_instance(
        str(spec.options.get("instance", "default"))
    )
    if settings.session_id is None and not (settings.username and settings.password):
        raise ValueError(
            f"enricher {spec.name!r} needs Salesforce credentials: set "
            "OPSROUTE_SALESFORCE_SESSION_ID and OPSROUTE_SALESFORCE_INSTANCE_URL, or "
            "OPSROUTE_SALESFORCE_USERNAME, _PASSWORD and _SECURITY_TOKEN"
        )
    return SalesforceAccountEnricher(spec, settings=settings, http_session=http_session)
