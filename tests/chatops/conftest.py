"""Fixtures of the Slack app tests: the fake Slack API, stored tickets, the app."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from slack_support import (
    BOT_TOKEN,
    ONCALL_GROUP,
    ONCALL_MEMBER,
    SIGNING_SECRET,
    SlackAppServer,
    store_tickets,
    write_mapping_files,
)
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from chatops.app import ChatopsApp, SlackEventsHandler
from chatops.settings import SlackSettings
from router.mapping import MappingSet, load_mappings
from router.sandbox.slack import FakeSlack
from router.store.db import session_factory


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings read OPSROUTE_* variables, so the developer's own must not leak in.
    for name in list(os.environ):
        if name.startswith("OPSROUTE_") and not name.startswith("OPSROUTE_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """Yield a running fake Slack Web API with the on-call user group."""
    with FakeSlack(lifetime_seconds=60) as fake:
        fake.usergroups[ONCALL_GROUP] = [ONCALL_MEMBER]
        fake.add_user(ONCALL_MEMBER, name="Grace Hopper", email="grace@example.com")
        yield fake


@pytest.fixture
def slack_settings(fake_slack: FakeSlack, tmp_path: Path) -> SlackSettings:
    """Return settings that point at the fake, with the test roles and people."""
    roles, people = write_mapping_files(tmp_path)
    return SlackSettings(
        signing_secret=SecretStr(SIGNING_SECRET),
        bot_token=SecretStr(BOT_TOKEN),
        api_url=f"{fake_slack.url}/api/",
        roles_file=roles,
        people_file=people,
    )


@pytest.fixture
def mappings() -> MappingSet:
    """Return the shipped mappings."""
    return load_mappings()


@pytest.fixture
def sessions(migrated_engine: Engine) -> sessionmaker[Session]:
    """Return a session factory on a migrated database with two stored tickets."""
    factory = session_factory(migrated_engine)
    with factory.begin() as session:
        store_tickets(session)
    return factory


@pytest.fixture
def chatops_app(
    slack_settings: SlackSettings,
    sessions: sessionmaker[Session],
    mappings: MappingSet,
) -> ChatopsApp:
    """Return the Slack app on the test database and the fake."""
    return ChatopsApp(
        settings=slack_settings, session_factory=sessions, mappings=mappings
    )


@pytest.fixture
def slack_server(chatops_app: ChatopsApp) -> Iterator[SlackAppServer]:
    """Yield the app served over HTTP on 127.0.0.1."""
    with SlackAppServer(SlackEventsHandler(chatops_app, missing=[])) as server:
        yield server
