"""Roles from the roles file: users, user groups, defaults and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from slack_sdk import WebClient

from chatops.permissions import (
    PermissionDeniedError,
    Role,
    RoleMap,
    RoleResolver,
    RolesFileError,
    load_role_map,
)
from chatops.settings import SLACK_MAPPINGS_DIR
from router.sandbox.slack import FakeSlack


def _resolver(role_map: RoleMap, fake: FakeSlack, **kwargs: object) -> RoleResolver:
    client = WebClient(token="xoxb-test", base_url=f"{fake.url}/api/")
    return RoleResolver(role_map, client=client, **kwargs)  # type: ignore[arg-type]


def test_shipped_roles_file_loads() -> None:
    role_map = load_role_map(SLACK_MAPPINGS_DIR / "roles.yaml")

    assert role_map.default_role is None
    assert role_map.visible_fields(Role.VIEWER) == {"account_tier"}
    assert "*" in role_map.visible_fields(Role.ADMIN)


def test_unknown_role_names_file_and_choices(tmp_path: Path) -> None:
    path = tmp_path / "roles.yaml"
    path.write_text("users:\n  U1: superuser\n")

    with pytest.raises(RolesFileError) as raised:
        load_role_map(path)

    assert str(raised.value) == (
        f"{path}: users: role 'superuser' is unknown; use one of viewer, responder, "
        "reviewer, admin."
    )


def test_missing_roles_file_names_setting(tmp_path: Path) -> None:
    with pytest.raises(RolesFileError) as raised:
        load_role_map(tmp_path / "absent.yaml")

    assert "set OPSROUTE_SLACK_ROLES_FILE" in str(raised.value)


def test_highest_role_wins(fake_slack: FakeSlack) -> None:
    fake_slack.usergroups["S1"] = ["U1"]
    role_map = RoleMap(users={"U1": Role.VIEWER}, usergroups={"S1": Role.REVIEWER})

    assert _resolver(role_map, fake_slack).role_of("U1") is Role.REVIEWER


def test_default_role_applies(fake_slack: FakeSlack) -> None:
    role_map = RoleMap(default_role=Role.VIEWER)

    assert _resolver(role_map, fake_slack).role_of("U9") is Role.VIEWER


def test_members_are_cached(fake_slack: FakeSlack) -> None:
    fake_slack.usergroups["S1"] = ["U1"]
    resolver = _resolver(RoleMap(usergroups={"S1": Role.RESPONDER}), fake_slack)

    for _ in range(3):
        assert resolver.role_of("U1") is Role.RESPONDER

    assert len(fake_slack.method_calls("usergroups.users.list")) == 1


def test_unreadable_group_grants_nothing(fake_slack: FakeSlack) -> None:
    resolver = _resolver(RoleMap(usergroups={"S404": Role.ADMIN}), fake_slack)

    assert resolver.role_of("U1") is None


def test_refusal_names_needed_role(fake_slack: FakeSlack) -> None:
    resolver = _resolver(RoleMap(users={"U1": Role.RESPONDER}), fake_slack)

    with pytest.raises(PermissionDeniedError) as raised:
        resolver.require("U1", Role.REVIEWER)

    assert str(raised.value).startswith(
        "This needs the reviewer role and your role is responder."
    )
    assert raised.value.needed is Role.REVIEWER
