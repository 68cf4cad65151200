"""Settings of the Slack app, from `OPSROUTE_SLACK_*` variables or the settings file."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SLACK_MAPPINGS_DIR = Path(__file__).resolve().parent.parent / "mappings" / "slack"


class SlackSettings(BaseSettings):
    """Tokens, the Web API base URL and the mapping files of the Slack app.

    Tokens and the signing secret are `SecretStr`, so they never show in a repr.
    """

    model_config = SettingsConfigDict(
        env_prefix="OPSROUTE_SLACK_",
        env_file=os.environ.get("OPSROUTE_SETTINGS_FILE"),
        extra="ignore",
    )

    signing_secret: SecretStr | None = Field(
        default=None,
        description="Signing secret of the Slack app; requests to /slack/events "
        "are verified with it.",
    )
    bot_token: SecretStr | None = Field(
        default=None, description="Bot user OAuth token (xoxb-...)."
    )
    app_token: SecretStr | None = Field(
        default=None,
        description="App-level token (xapp-...) with connections:write, for "
        "Socket Mode only.",
    )
    api_url: str = Field(
        default="https://slack.com/api/",
        description="Base URL of the Slack Web API; point it at a fake for tests.",
    )
    roles_file: Path = Field(
        default=SLACK_MAPPINGS_DIR / "roles.yaml",
        description="YAML file that maps Slack users and user groups to roles.",
    )
    people_file: Path = Field(
        default=SLACK_MAPPINGS_DIR / "people.yaml",
        description="YAML file that maps Slack users to ITSM users.",
    )
    review_channel: str = Field(
        default="#opsroute-review",
        description="Channel of review notifications whose target is not a channel.",
    )
    escalation_channel: str = Field(
        default="#opsroute-escalations",
        description="Channel of escalations whose target is a group, not a channel.",
    )
    repeat_window_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Seconds within which the same click or command by the same "
        "user counts as a repeat and is not acted on again.",
    )
    usergroup_cache_seconds: float = Field(
        default=300.0,
        ge=0,
        description="Seconds the members of a Slack user group are cached.",
    )

    def missing_for_http(self) -> list[str]:
        """Return the names of unset variables that HTTP mode needs."""
        missing = []
        if self.signing_secret is None:
            missing.append("OPSROUTE_SLACK_SIGNING_SECRET")
        if self.bot_token is None:
            missing.append("OPSROUTE_SLACK_BOT_TOKEN")
        return missing

    @property
    def api_base_url(self) -> str:
        """Return `api_url` with the trailing slash that slack_sdk expects."""
        return self.api_url if self.api_url.endswith("/") else self.api_url + "/"
