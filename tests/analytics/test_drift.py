"""Drift review of a recent window against a reference window."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from router.analytics.drift import DriftLimits, Windows, psi, review_drift
from router.schemas import DecisionAction

from .support import START, decide, event, hours

GROUPS = ("Hardware", "Access", "Storage")
TITLES = {
    "Hardware": "printer on floor {n} is broken",
    "Access": "password reset for account {n}",
    "Storage": "mailbox quota full for user {n}",
}
WINDOWS = Windows(
    reference_start=START,
    recent_start=START + timedelta(days=14),
    end=START + timedelta(days=28),
)


def _fill(
    session: Session,
    *,
    start_day: int,
    prefix: str,
    mix: dict[str, int],
    confidence: float,
    wrong_every: int = 0,
    titles: dict[str, str] = TITLES,
) -> None:
    number = 0
    for group, count in mix.items():
        for _ in range(count):
            number += 1
            at = START + timedelta(days=start_day, minutes=number * 7)
            key = decide(
                session,
                f"{prefix}-{number}",
                group,
                at=at,
                confidence=confidence,
                title=titles[group].format(n=number),
                action=DecisionAction.AUTO_ROUTE,
            )
            owner = group
            if wrong_every and number % wrong_every == 0:
                owner = "Purchase"
                event(
                    session,
                    key,
                    "transfer",
                    at + hours(1),
                    from_group=group,
                    to_group=owner,
                    by="person",
                    source="jira",
                )
            event(session, key, "ticket_resolved", at + hours(2), group=owner)
    session.commit()


def test_psi_of_equal_shares_is_zero() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0


def test_psi_grows_with_shift() -> None:
    assert psi([0.5, 0.5], [0.9, 0.1]) > psi([0.5, 0.5], [0.6, 0.4]) > 0.0


def test_unshifted_window_raises_no_flag(session: Session) -> None:
    mix = {"Hardware": 30, "Access": 30, "Storage": 30}
    _fill(session, start_day=0, prefix="REF", mix=mix, confidence=0.95)
    _fill(session, start_day=15, prefix="NEW", mix=mix, confidence=0.95)

    report = review_drift(session, windows=WINDOWS, limits=DriftLimits())

    assert report.reference_tickets == 90
    assert report.recent_tickets == 90
    assert report.flags == []
    assert report.drifted is False
    assert report.label_psi == 0.0


def test_shifted_window_flags_each_measure(session: Session) -> None:
    _fill(
        session,
        start_day=0,
        prefix="REF",
        mix={"Hardware": 30, "Access": 30, "Storage": 30},
        confidence=0.95,
    )
    shifted_titles = {group: "vpn tunnel drops at site {n}" for group in GROUPS}
    _fill(
        session,
        start_day=15,
        prefix="NEW",
        mix={"Hardware": 80, "Access": 5, "Storage": 5},
        confidence=0.55,
        wrong_every=3,
        titles=shifted_titles,
    )

    report = review_drift(session, windows=WINDOWS, limits=DriftLimits())
    flags = "\n".join(report.flags)

    assert report.drifted is True
    assert "label mix shifted" in flags
    assert "input vocabulary shifted" in flags
    assert "confidence distribution shifted" in flags
    assert "transfer rate rose from 0.0000 to 0.3333" in flags
    assert "auto-route precision of Hardware fell" in flags


def test_limits_are_configurable(session: Session) -> None:
    _fill(session, start_day=0, prefix="REF", mix={"Hardware": 30}, confidence=0.95)
    _fill(session, start_day=15, prefix="NEW", mix={"Hardware": 30}, confidence=0.55)
    loose = DriftLimits(confidence_psi=100.0)

    strict_report = review_drift(session, windows=WINDOWS, limits=DriftLimits())
    loose_report = review_drift(session, windows=WINDOWS, limits=loose)

    assert strict_report.drifted is True
    assert loose_report.drifted is False


def test_small_groups_are_not_compared(session: Session) -> None:
    _fill(session, start_day=0, prefix="REF", mix={"Hardware": 5}, confidence=0.95)
    _fill(
        session,
        start_day=15,
        prefix="NEW",
        mix={"Hardware": 5},
        confidence=0.95,
        wrong_every=2,
    )

    report = review_drift(session, windows=WINDOWS, limits=DriftLimits())

    assert report.group_precision["Hardware"]["change"] is None
    assert report.group_precision["Hardware"]["recent_tickets"] == 5
