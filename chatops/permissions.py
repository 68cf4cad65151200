"""Roles of Slack users, from Slack user ids and user groups in `roles.yaml`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import yaml
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

logger = logging.getLogger(__name__)


class Role(IntEnum):
    """Roles in order: each one may do everything the lower ones may do."""

    VIEWER = 1
    RESPONDER = 2
    REVIEWER = 3
    ADMIN = 4

    @classmethod
    def parse(cls, value: str, *, where: str) -> Role:
        """Return the role named `value`, or raise naming the file and key."""
        try:
            return cls[value.strip().upper()]
        except (KeyError, AttributeError):
            names = ", ".join(role.name.lower() for role in cls)
            raise RolesFileError(
                f"{where}: role {value!r} is unknown; use one of {names}."
            ) from None

    @property
    def label(self) -> str:
        """Return the lower-case name used in files and messages."""
        return self.name.lower()


class RolesFileError(ValueError):
    """The roles file is missing or invalid."""


class PermissionDeniedError(PermissionError):
    """A Slack user lacks the role an action needs."""

    def __init__(self, *, user_id: str, needed: Role, actual: Role | None) -> None:
        has = f"your role is {actual.label}" if actual else "you have no role"
        super().__init__(
            f"This needs the {needed.label} role and {has}. Ask an opsroute admin "
            "to add you or your user group to the Slack roles file."
        )
        self.user_id = user_id
        self.needed = needed
        self.actual = actual


@dataclass(frozen=True)
class RoleMap:
    """The contents of a roles file."""

    users: Mapping[str, Role] = field(default_factory=dict)
    usergroups: Mapping[str, Role] = field(default_factory=dict)
    default_role: Role | None = None
    # Role -> context fields it may see; "*" means all.
    context_fields: Mapping[Role, frozenset[str]] = field(default_factory=dict)

    def visible_fields(self, role: Role | None) -> frozenset[str]:
        """Return the context fields `role` may see, including lower roles' fields."""
        if role is None:
            return frozenset()
        fields: set[str] = set()
        for granted, names in self.context_fields.items():
            if granted <= role:
                fields |= names
        return frozenset(fields)


def load_role_map(path: Path) -> RoleMap:
    """Read a roles file.

    Raises:
        RolesFileError: the file is missing, not YAML, or names an unknown role.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise RolesFileError(
            f"Cannot read the Slack roles file {path}: {error.strerror}; set "
            "OPSROUTE_SLACK_ROLES_FILE to an existing file."
        ) from None
    except yaml.YAMLError as error:
        raise RolesFileError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise RolesFileError(f"{path}: expected a mapping at the top level.")

    users = _role_table(document.get("users"), where=f"{path}: users")
    usergroups = _role_table(document.get("usergroups"), where=f"{path}: usergroups")
    default = document.get("default_role")
    context: dict[Role, frozenset[str]] = {}
    for name, fields in (document.get("context_fields") or {}).items():
        role = Role.parse(str(name), where=f"{path}: context_fields")
        if not isinstance(fields, list):
            raise RolesFileError(
                f"{path}: context_fields.{name} must be a list of field names."
            )
        context[role] = frozenset(str(item) for item in fields)
    return RoleMap(
        users=users,
        usergroups=usergroups,
        default_role=(
            Role.parse(str(default), where=f"{path}: default_role")
            if default is not None
            else None
        ),
        context_fields=context,
    )


def _role_table(section: Any, *, where: str) -> dict[str, Role]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise RolesFileError(f"{where} must map Slack ids to role names.")
    return {
        str(key): Role.parse(str(value), where=where) for key, value in section.items()
    }


class RoleResolver:
    """Find a Slack user's role, reading user group members through the Web API.

    Members of each listed user group come from `usergroups.users.list` and are
    cached for `cache_seconds`, so a click costs at most one call per group.
    """

    def __init__(
        self,
        role_map: RoleMap,
        *,
        client: WebClient,
        cache_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.role_map = role_map
        self._client = client
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def role_of(self, user_id: str) -> Role | None:
        """Return the user's highest role, or the default role, or None."""
        roles: list[Role] = []
        direct = self.role_map.users.get(user_id)
        if direct is not None:
            roles.append(direct)
        for group_id, role in self.role_map.usergroups.items():
            if direct is not None and role <= direct:
                continue
            if user_id in self._group_members(group_id):
                roles.append(role)
        if roles:
            return max(roles)
        return self.role_map.default_role

    def require(self, user_id: str, needed: Role) -> Role:
        """Return the user's role if it is at least `needed`.

        Raises:
            PermissionDeniedError: the user has no role or a lower one.
        """
        actual = self.role_of(user_id)
        if actual is None or actual < needed:
            raise PermissionDeniedError(user_id=user_id, needed=needed, actual=actual)
        return actual

    def _group_members(self, group_id: str) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            cached = self._members.get(group_id)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        try:
            response = self._client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as error:
            # A group that cannot be read grants nothing; the user still gets the
            # roles from their own entry and from the other groups.
            logger.warning(
                "Cannot read members of Slack user group %s: %s",
                group_id,
                error.response.get("error"),
            )
            return cached[1] if cached is not None else frozenset()
        members = frozenset(_strings(response.get("users")))
        with self._lock:
            self._members[group_id] = (now, members)
        return members


def _strings(values: Sequence[Any] | None) -> list[str]:
    return [str(value) for value in values or ()]
