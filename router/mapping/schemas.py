"""Pydantic models of each kind of file under `mappings/`.

These models check structure only: types, required keys and unknown keys. Checks that
need more than one key or more than one file (value map targets, duplicate ids,
threshold groups) live in `router.mapping.checks`, so that one run reports them all.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)

from router.escalation.schemas import EscalationFile
from router.policy.schemas import PolicyFile, PolicySettings

__all__ = ["EscalationFile", "PolicyFile", "PolicySettings"]

# Ticket fields a system mapping may fill. `source_system` comes from the file, `raw`
# from the record itself, and `context` from the enrichers.
CanonicalField = Literal[
    "external_id",
    "record_id",
    "title",
    "description",
    "requester",
    "account",
    "priority",
    "urgency",
    "impact",
    "category",
    "subcategory",
    "issue_type",
    "state",
    "assignment_group",
    "labels",
    "created_at",
    "updated_at",
]
CANONICAL_FIELDS: Final = get_args(CanonicalField)

# The classifier reads only these fields, so none of them may carry the routing label.
CLASSIFIER_FIELDS: Final = frozenset(
    {"title", "description", "category", "subcategory", "issue_type", "priority"}
)
INT_FIELD_RANGES: Final = {"priority": (1, 5), "urgency": (1, 3), "impact": (1, 3)}
DATETIME_FIELDS: Final = frozenset({"created_at", "updated_at"})
LIST_FIELDS: Final = frozenset({"labels"})

TransformName = Literal[
    "adf_text", "sn_datetime", "jira_datetime", "sf_datetime", "int", "salesforce_id18"
]
DATETIME_TRANSFORMS: Final = frozenset({"sn_datetime", "jira_datetime", "sf_datetime"})

# A dotted path into a record: `short_description`, `fields.priority.name`,
# `fields.components.0.name` (a number segment indexes a list).
SourcePath = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z_$][\w$-]*(\.[\w$-]+)*$")
]
Name = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


def _compile_pattern(pattern: str) -> str:
    try:
        re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(
            f"invalid regular expression ({exc}); fix the pattern, or escape special "
            "characters with a backslash"
        ) from exc
    return pattern


RegexPattern = Annotated[
    str, StringConstraints(min_length=1), AfterValidator(_compile_pattern)
]
Keyword = Annotated[
    str, StringConstraints(min_length=1, strip_whitespace=True, to_lower=True)
]


def _check_map_target(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("expected a whole number or a string")
    return value


# A canonical value: an int for priority, urgency and impact, a string elsewhere.
MapTarget = Annotated[Any, AfterValidator(_check_map_target)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldSpec(_Strict):
    """Where one canonical field comes from in a record, and how to convert it.

    A plain string in YAML is shorthand for `{path: <string>}`. When `path` is a list,
    the first path with a non-empty value wins. A value shaped like a ServiceNow
    wrapper (`{link, value}`, `{display_value, value}`) is unwrapped: a `reference`
    field tries the `prefer` key first (display_value unless set), any other field
    tries `value` first.
    """

    path: Annotated[list[SourcePath], Field(min_length=1)]
    reference: bool = False
    prefer: Literal["display_value", "value"] = "display_value"
    transform: TransformName | None = None

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"path": [data]}
        return data

    @field_validator("path", mode="before")
    @classmethod
    def _listify_path(cls, data: Any) -> Any:
        return [data] if isinstance(data, str) else data


class ValueMap(_Strict):
    """A map from source values to canonical values for one field.

    A source value missing from `map` is a normalization error, unless `default` is
    set (used instead) or `keep_unknown` is true (the source value is kept as is).
    """

    map: Annotated[dict[str, MapTarget], Field(min_length=1)]
    default: MapTarget | None = None
    ignore_case: bool = False
    keep_unknown: bool = False

    @field_validator("map", mode="before")
    @classmethod
    def _stringify_keys(cls, data: Any) -> Any:
        # YAML reads an unquoted `1:` as an int key; records compare as strings.
        if isinstance(data, dict):
            return {_yaml_key_text(key): value for key, value in data.items()}
        return data


def _yaml_key_text(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


class WriteBack(_Strict):
    """Write-back settings: the record fields a connector writes a decision to."""

    enabled: bool = True
    group_field: SourcePath | None = None
    note_field: SourcePath | None = None


class SystemMapping(_Strict):
    """Field and value maps of one source system (`servicenow.yaml`, `jira.yaml`...)."""

    system: Identifier
    version: str | None = None
    # Keys are canonical field names (CanonicalField); the loader reports unknown
    # names together with the other problems of the file instead of stopping here.
    fields: dict[str, FieldSpec]
    values: dict[str, ValueMap] = Field(default_factory=dict)
    # Source paths that contain the resolver group (Jira's project, for one), which no
    # field the classifier reads may copy.
    label_paths: list[SourcePath] = Field(default_factory=list)
    triage_group: Name | None = None
    reroute_label: Name | None = None
    write_back: WriteBack | None = None

    _source: str = PrivateAttr(default="")
    _normalizer: Any = PrivateAttr(default=None)

    @property
    def source(self) -> str:
        """Return the file this mapping was read from, for error messages."""
        return self._source or f"{self.system}.yaml"


class Intent(_Strict):
    """One kind of request, recognised by keywords and regular expressions."""

    id: Identifier
    description: Name
    keywords: list[Keyword] = Field(default_factory=list)
    patterns: list[RegexPattern] = Field(default_factory=list)
    weight: float = Field(default=1.0, gt=0.0)


class JiraTarget(_Strict):
    """A resolver group's place in Jira: project, component, team and assignee.

    `team` is the option written to the team custom field that `write_back.
    group_field` of jira.yaml names (the group's name when unset), and `assignee`
    is an account id (REST API v3) or a user name (v2) to assign the issue to.
    """

    project: Name | None = None
    component: Name | None = None
    team: Name | None = None
    assignee: Name | None = None


class GroupTargets(_Strict):
    """The name of a resolver group in each source system."""

    servicenow: Name | None = None
    jira: JiraTarget | None = None
    salesforce: Name | None = None


class ResolverGroup(_Strict):
    """A team that tickets are routed to."""

    name: Name
    description: Name
    targets: GroupTargets = Field(default_factory=GroupTargets)


class Taxonomy(_Strict):
    """Intents and resolver groups (`taxonomy.yaml`)."""

    version: str | None = None
    fallback_intent: Identifier = "general"
    intents: Annotated[list[Intent], Field(min_length=1)]
    resolver_groups: Annotated[list[ResolverGroup], Field(min_length=1)]

    _matcher: Any = PrivateAttr(default=None)

    @property
    def group_names(self) -> list[str]:
        """Return the resolver group names in file order."""
        return [group.name for group in self.resolver_groups]


class Thresholds(_Strict):
    """Confidence thresholds for auto-routing (`thresholds.yaml`)."""

    version: str | None = None
    default: Probability
    groups: dict[str, Probability] = Field(default_factory=dict)
    review_candidates: int = Field(default=3, ge=1)
    target_auto_route_precision: float = Field(default=0.95, gt=0.0, le=1.0)
    # Intents whose tickets always go to a person, whatever the confidence.
    force_review_intents: list[Identifier] = Field(default_factory=list)

    def threshold_for(self, group: str) -> float:
        """Return the confidence a prediction of `group` needs to be auto-routed."""
        return self.groups.get(group, self.default)
