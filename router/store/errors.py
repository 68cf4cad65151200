"""Errors raised by the store, each naming the value that failed and the fix."""

from __future__ import annotations

from collections.abc import Sequence


class StoreError(Exception):
    """Base class for errors raised by the store."""


class UnsupportedDatabaseError(StoreError, ValueError):
    """The database URL names a backend the store does not support."""

    def __init__(self, url: str, backend: str) -> None:
        super().__init__(
            f"Database URL {url!r} uses the backend {backend!r}, which opsroute does "
            "not support; use a sqlite:/// file or a postgresql+psycopg:// URL."
        )
        self.url = url
        self.backend = backend


class TicketNotFoundError(StoreError, LookupError):
    """No stored ticket matches the reference."""

    def __init__(self, ref: str) -> None:
        super().__init__(
            f"Ticket {ref!r} not found; check the id, or give it as 'system:id' "
            "(for example 'jira:HDFS-123')."
        )
        self.ref = ref


class AmbiguousTicketError(StoreError, LookupError):
    """The reference is an id that several source systems use."""

    def __init__(self, ref: str, systems: Sequence[str]) -> None:
        listed = ", ".join(systems)
        super().__init__(
            f"Ticket id {ref!r} exists in several systems ({listed}); add the "
            f"system prefix, for example '{systems[0]}:{ref}'."
        )
        self.ref = ref
        self.systems = tuple(systems)


class ReviewNotFoundError(StoreError, LookupError):
    """The ticket has no open review item."""

    def __init__(self, ticket_key: str) -> None:
        super().__init__(
            f"Ticket {ticket_key!r} has no open review item; it was auto-routed or its "
            "review is already resolved. List the open items with list_open_reviews."
        )
        self.ticket_key = ticket_key


class ModelNotFoundError(StoreError, LookupError):
    """No stored model matches the version, kind and dataset requested."""

    def __init__(
        self, *, version: str | None, kind: str | None, dataset: str | None
    ) -> None:
        if version is not None:
            of_kind = "" if kind is None else f" of kind {kind!r}"
            message = (
                f"Model version {version!r}{of_kind} not found; "
                "list the stored versions with list_models."
            )
        else:
            for_dataset = "" if dataset is None else f" for dataset {dataset!r}"
            message = (
                f"No active {kind!r} model{for_dataset}; "
                "train a model or activate a stored version."
            )
        super().__init__(message)
        self.version = version
        self.kind = kind
        self.dataset = dataset


class ModelVersionConflictError(StoreError, ValueError):
    """A model version is already stored with different content."""

    def __init__(self, version: str, field: str) -> None:
        super().__init__(
            f"Model version {version!r} is already stored with a different {field}; "
            "stored versions never change, so save the new model under a new version."
        )
        self.version = version
        self.field = field


class NoPreviousModelError(StoreError, LookupError):
    """A rollback found no previous model to return to."""

    def __init__(self, *, kind: str, dataset: str) -> None:
        super().__init__(
            f"No previous {kind!r} model for dataset {dataset!r} to roll back to; "
            "a rollback needs a model that was active before the current one. "
            "List the stored models with `opsroute model list`."
        )
        self.kind = kind
        self.dataset = dataset


class ActionNotFoundError(StoreError, LookupError):
    """No outbox action has the id."""

    def __init__(self, action_id: int) -> None:
        super().__init__(
            f"Outbox action {action_id} not found; list the actions with "
            "`opsroute outbox list`."
        )
        self.action_id = action_id


class ActionNotDeadError(StoreError, ValueError):
    """Only a dead outbox action can be retried."""

    def __init__(self, action_id: int, status: str) -> None:
        super().__init__(
            f"Outbox action {action_id} is {status}, not dead, so it cannot be "
            "retried; the dispatcher still delivers pending and in_flight actions, "
            "and done ones need nothing."
        )
        self.action_id = action_id
        self.status = status
