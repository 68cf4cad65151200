"""Schemas of the policy files: `policies/*.yaml` and `policy.yaml`.

These models import nothing from the mapping loader, so the loader can validate
policy files with them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

NonEmpty = Annotated[str, StringConstraints(min_length=1)]
RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
# A notification target: channel:#name, user:<email>, group:<name> or
# account_manager:<email>. `account_manager:` may leave the address out, so that
# it comes from the ticket's context.
Target = Annotated[
    str,
    StringConstraints(pattern=r"^((channel|user|group):.+|account_manager:.*)$"),
]

COMPARISONS = (
    "equals",
    "not_equals",
    "in",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "matches",
    "exists",
    "within_days",
)

# Comparison names that are Python keywords, and their attribute names.
_ATTRIBUTES = {"in": "in_"}


class FieldRef(BaseModel):
    """A comparison value read from other fields, as `{field: path, minus: path}`.

    `plus` and `minus` add or subtract further numeric fields, so that a rule
    can compare requested seats with `bought - in use`.
    """

    model_config = ConfigDict(extra="forbid")

    field: NonEmpty
    plus: list[NonEmpty] = Field(default_factory=list)
    minus: list[NonEmpty] = Field(default_factory=list)

    @field_validator("plus", "minus", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Condition(BaseModel):
    """One test on a field, such as `{field: context.account.arr, gte: 100000}`.

    Exactly one comparison is set. `field` is a dotted path: a Ticket field
    (`priority`, `labels`), `text` (title and description), `intent`,
    `model.group`, `model.confidence`, or `context.<key>...`. `within_days` holds
    when a date field lies between now and that many days ahead.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    field: NonEmpty
    equals: Any = None
    not_equals: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    not_in: list[Any] | None = None
    gt: float | FieldRef | None = None
    gte: float | FieldRef | None = None
    lt: float | FieldRef | None = None
    lte: float | FieldRef | None = None
    contains: Any = None
    matches: str | None = None
    exists: bool | None = None
    within_days: float | None = None

    @model_validator(mode="after")
    def _one_comparison(self) -> Condition:
        chosen = self.comparisons()
        if len(chosen) != 1:
            raise ValueError(
                f"condition on {self.field!r} needs exactly one comparison, found "
                f"{len(chosen)}; use one of {', '.join(COMPARISONS)}"
            )
        return self

    def comparisons(self) -> list[str]:
        """Return the names of the comparisons this condition sets."""
        return [
            name
            for name in COMPARISONS
            if getattr(self, _ATTRIBUTES.get(name, name)) is not None
        ]


class Match(BaseModel):
    """Conditions that all (`all`) or at least one (`any`) must hold; nests."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    all: list[Condition | Match] = Field(default_factory=list)
    any: list[Condition | Match] = Field(default_factory=list)
    not_: Condition | Match | None = Field(default=None, alias="not")


class TaskSpec(BaseModel):
    """A task to create in the source system, linked to the ticket."""

    model_config = ConfigDict(extra="forbid")

    type: RuleId
    # `{external_id}`, `{title}` and context paths such as `{context.account.name}`
    # are filled in from the ticket.
    title: NonEmpty
    description: str = ""
    assignee: str | None = None


class NotifySpec(BaseModel):
    """A notification to send, as `{target, reason}`.

    The target `account_manager:` without an address takes the address from the
    ticket's `context.account.account_manager`.
    """

    model_config = ConfigDict(extra="forbid")

    target: Target
    reason: NonEmpty


class Effects(BaseModel):
    """Effects of a matching rule."""

    model_config = ConfigDict(extra="forbid")

    route_to: NonEmpty | None = None
    review: bool = False
    # The workflow the ticket belongs to; regulated workflows always go to review.
    workflow: RuleId | None = None
    priority: int | None = Field(default=None, ge=1, le=5)
    tasks: list[TaskSpec] = Field(default_factory=list)
    notify: list[NotifySpec] = Field(default_factory=list)
    escalation: NonEmpty | None = None


class Rule(BaseModel):
    """One rule: conditions (`when`), effects (`then`), and whether to stop after."""

    model_config = ConfigDict(extra="forbid")

    id: RuleId
    description: str = ""
    when: Match
    then: Effects
    # Stop evaluating the rules after this one when it matches.
    stop: bool = False


class PolicyFile(BaseModel):
    """A versioned routing policy (`policies/*.yaml`): rules evaluated in order.

    Files are evaluated by `order`, then by file name.
    """

    model_config = ConfigDict(extra="forbid")

    version: NonEmpty
    description: str = ""
    order: int = 100
    rules: list[Rule] = Field(default_factory=list)


class FinancialAccess(BaseModel):
    """Context fields that are financial, and the recipients allowed to see them."""

    model_config = ConfigDict(extra="forbid")

    # Context paths such as `account.arr`; a path also covers the keys below it.
    fields: list[NonEmpty] = Field(default_factory=list)
    # Notification target kinds (`account_manager`) or whole targets
    # (`group:Finance Operations`) that may see financial values.
    roles: list[NonEmpty] = Field(default_factory=list)


class PolicySettings(BaseModel):
    """Settings shared by all policies (`policy.yaml`)."""

    model_config = ConfigDict(extra="forbid")

    version: NonEmpty
    regulated_workflows: list[RuleId] = Field(default_factory=list)
    financial: FinancialAccess = Field(default_factory=FinancialAccess)
    # Escalation policy that `escalate_now` starts when a ticket has none open.
    default_escalation: NonEmpty | None = None
