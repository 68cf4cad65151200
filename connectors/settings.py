"""Connection settings of each source system, read with pydantic-settings.

The default instance of a system reads `OPSROUTE_<SYSTEM>_*` variables; an instance
named `eu` reads `OPSROUTE_<SYSTEM>_EU_*`. `OPSROUTE_SETTINGS_FILE` may name a
`.env`-style file, and environment variables win over it. Secrets are `SecretStr`,
so neither `repr` nor logs show them.
"""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar, Final, Self

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from router.intake.plugin import DEFAULT_INSTANCE
from router.mapping.transforms import salesforce_id18

_INSTANCE_NAME: Final = re.compile(r"^[a-z][a-z0-9_]*$")


def env_prefix(system: str, instance: str) -> str:
    """Return the environment variable prefix of one connector instance."""
    if instance == DEFAULT_INSTANCE:
        return f"OPSROUTE_{system.upper()}_"
    if not _INSTANCE_NAME.match(instance):
        raise ValueError(
            f"instance name {instance!r} of {system} is invalid; use lower-case "
            "letters, digits and underscores, starting with a letter"
        )
    return f"OPSROUTE_{system.upper()}_{instance.upper()}_"


class _ConnectorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=os.environ.get("OPSROUTE_SETTINGS_FILE"),
        extra="ignore",
    )

    # The system whose variables a subclass reads.
    system: ClassVar[str] = ""

    timeout_seconds: float = Field(
        default=10.0, gt=0, description="Timeout of each API call, in seconds."
    )
    poll: bool = Field(
        default=False,
        description="Poll the system for changed records (needs API credentials).",
    )
    poll_start: str = Field(
        default="now",
        description=(
            "Watermark of the first poll: 'now', or an ISO 8601 date or time in "
            "UTC such as 2026-11-01 or 2026-11-01T08:00:00Z."
        ),
    )
    poll_overlap_seconds: float = Field(
        default=120.0,
        ge=0,
        description="Seconds before the watermark that each poll reads again.",
    )
    poll_page_size: int = Field(
        default=100, ge=1, le=1000, description="Records per page of a poll."
    )
    observe_only: bool = Field(
        default=False,
        description="Decide and record, but queue no write-back.",
    )

    @classmethod
    def for_instance(cls, instance: str = DEFAULT_INSTANCE, **values: Any) -> Self:
        """Read the settings of `instance` from the environment and settings file."""
        prefix = env_prefix(cls.system, instance)
        return cls(_env_prefix=prefix, **values)  # type: ignore[call-arg]

    @classmethod
    def setting_name(cls, field: str, instance: str = DEFAULT_INSTANCE) -> str:
        """Return the environment variable that sets `field` for `instance`."""
        return f"{env_prefix(cls.system, instance)}{field.upper()}"


class ServiceNowSettings(_ConnectorSettings):
    """ServiceNow webhook secret and Table API credentials."""

    model_config = SettingsConfigDict(env_prefix="OPSROUTE_SERVICENOW_")

    system: ClassVar[str] = "servicenow"
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Shared secret of the X-Opsroute-Signature HMAC or Bearer token.",
    )
    instance: str | None = Field(
        default=None,
        description=(
            "Instance name (acme), host (acme.service-now.com) or URL "
            "(http://127.0.0.1:8001) of the ServiceNow instance."
        ),
    )
    user: str | None = Field(default=None, description="Table API user name.")
    password: SecretStr | None = Field(default=None, description="Table API password.")
    table: str = Field(default="incident", description="Table of the routed records.")


class JiraSettings(_ConnectorSettings):
    """Jira webhook secret and REST API credentials."""

    model_config = SettingsConfigDict(env_prefix="OPSROUTE_JIRA_")

    system: ClassVar[str] = "jira"
    webhook_secret: SecretStr | None = Field(
        default=None, description="Secret of the X-Hub-Signature HMAC."
    )
    url: str | None = Field(
        default=None, description="Base URL of the site, https://acme.atlassian.net."
    )
    user: str | None = Field(
        default=None, description="User name, or the account e-mail on Cloud."
    )
    api_token: SecretStr | None = Field(
        default=None, description="API token (Cloud) or password (Server)."
    )
    rest_api_version: str = Field(
        default="2",
        pattern=r"^[23]$",
        description="REST API version of write-back: 2 (plain text) or 3 (ADF).",
    )
    deployment: str = Field(
        default="auto",
        pattern=r"^(auto|cloud|server)$",
        description=(
            "cloud pages searches by token (search/jql), server by offset (search); "
            "auto picks cloud for *.atlassian.net URLs."
        ),
    )
    project: str | None = Field(
        default=None, description="Project key that polling reads; all when unset."
    )
    jql_time_zone: str = Field(
        default="UTC",
        description="Time zone of the API user's profile, in which JQL reads dates.",
    )
    integration_account_id: str | None = Field(
        default=None,
        description="Account id of the API user on Cloud, to recognize our changes.",
    )


class SalesforceSettings(_ConnectorSettings):
    """Salesforce Outbound Message allow-list and REST API credentials."""

    model_config = SettingsConfigDict(env_prefix="OPSROUTE_SALESFORCE_")

    system: ClassVar[str] = "salesforce"
    org_ids: str = Field(
        default="",
        description="Comma-separated 15- or 18-character ids of the allowed orgs.",
    )
    instance_url: str | None = Field(
        default=None, description="https://acme.my.salesforce.com"
    )
    session_id: SecretStr | None = Field(
        default=None, description="An OAuth access token or session id."
    )
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    domain: str = Field(default="login", description="login, test or a My Domain.")
    integration_user_id: str | None = Field(
        default=None,
        description="Id of the API user, to recognize the changes opsroute made.",
    )
    api_version: str = Field(default="60.0", pattern=r"^\d+\.\d$")

    def allowed_org_ids(self) -> frozenset[str]:
        """Return the allowed organization ids in their 18-character form.

        Raises:
            ValueError: an entry is not a 15- or 18-character id.
        """
        allowed = set()
        for entry in self.org_ids.split(","):
            text = entry.strip()
            if not text:
                continue
            try:
                allowed.add(salesforce_id18(text))
            except ValueError:
                raise ValueError(
                    f"organization id {text!r} in OPSROUTE_SALESFORCE_ORG_IDS is "
                    "invalid; expected 15 or 18 letters and digits, such as "
                    "00D000000000062EAA"
                ) from None
        return frozenset(allowed)
