"""Slack users and their ITSM accounts, from `people.yaml` or the Slack profile."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

logger = logging.getLogger(__name__)


class PeopleFileError(ValueError):
    """The people mapping file is missing or invalid."""


@dataclass(frozen=True)
class Person:
    """A Slack user with the accounts they have in the ITSM systems.

    `accounts` maps a system name (servicenow, jira, salesforce) to the user's id
    there. A connector that finds no account for its system writes back as the
    integration user, with `name` and `email` in the note.
    """

    slack_user_id: str
    name: str
    email: str | None = None
    accounts: dict[str, str] = field(default_factory=dict)

    @property
    def actor(self) -> str:
        """Return the audit log actor, `slack:<user id>`."""
        return f"slack:{self.slack_user_id}"

    def on_behalf_of(self, system: str) -> dict[str, Any]:
        """Return the write-back payload entry that names this person."""
        return {
            "name": self.name,
            "email": self.email,
            "slack_user_id": self.slack_user_id,
            "user": self.accounts.get(system),
        }


def load_people(path: Path) -> dict[str, Person]:
    """Read a people file; a missing file means no mapped people.

    Raises:
        PeopleFileError: the file is not YAML or an entry is not a mapping.
    """
    if not path.exists():
        return {}
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise PeopleFileError(f"{path} is not valid YAML: {error}") from None
    section = document.get("people") if isinstance(document, dict) else None
    people: dict[str, Person] = {}
    for user_id, entry in (section or {}).items():
        if not isinstance(entry, dict):
            raise PeopleFileError(
                f"{path}: people.{user_id} must be a mapping with name, email and "
                "one key per system."
            )
        accounts = {
            system: str(entry[system])
            for system in ("servicenow", "jira", "salesforce")
            if entry.get(system)
        }
        people[str(user_id)] = Person(
            slack_user_id=str(user_id),
            name=str(entry.get("name") or user_id),
            email=str(entry["email"]) if entry.get("email") else None,
            accounts=accounts,
        )
    return people


class PeopleDirectory:
    """Map Slack users to people, from the file first and then from `users.info`.

    Profiles read through `users.info` are cached for the life of the process.
    """

    def __init__(self, people: dict[str, Person], *, client: WebClient) -> None:
        self._people = dict(people)
        self._client = client
        self._lock = threading.Lock()

    def person(self, user_id: str, *, fallback_name: str | None = None) -> Person:
        """Return the person behind a Slack user id.

        A user whose profile cannot be read gets `fallback_name` (the user name
        Slack sent with the request) and no e-mail address.
        """
        with self._lock:
            known = self._people.get(user_id)
        if known is not None:
            return known
        try:
            response = self._client.users_info(user=user_id)
        except SlackApiError as error:
            logger.warning(
                "Cannot read the Slack profile of %s: %s",
                user_id,
                error.response.get("error"),
            )
            return Person(slack_user_id=user_id, name=fallback_name or user_id)
        user = response.get("user") or {}
        profile = user.get("profile") or {}
        email = profile.get("email")
        person = Person(
            slack_user_id=user_id,
            name=str(
                profile.get("real_name") or user.get("name") or fallback_name or user_id
            ),
            email=str(email) if email else None,
        )
        with self._lock:
            self._people[user_id] = person
        return person
