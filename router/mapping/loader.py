"""Find, load and check a folder of mapping files.

The folder contains `<system>.yaml` for each source system, `taxonomy.yaml`,
`thresholds.yaml`, `policies/*.yaml`, `escalation/*.yaml` and `examples/*.json`,
and optionally `policy.yaml` (settings of all policies) and `enrichment.yaml`.
Loading reads every file and collects every problem before it fails, so one run of
`opsroute mappings validate` lists them all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import BaseModel

from router.enrichment.schemas import EnrichmentFile
from router.mapping.checks import (
    check_example,
    check_system_mapping,
    check_taxonomy,
    check_thresholds,
)
from router.mapping.errors import NO_VALUE, MappingError, MappingProblem
from router.mapping.intents import intent_matcher, match_intent
from router.mapping.normalize import normalize_record, normalizer_for
from router.mapping.reading import read_json, read_yaml, validate_model
from router.mapping.schemas import (
    EscalationFile,
    PolicyFile,
    PolicySettings,
    SystemMapping,
    Taxonomy,
    Thresholds,
)
from router.policy.checks import check_policies
from router.schemas import Ticket
from router.settings import CoreSettings

logger = logging.getLogger(__name__)

DEFAULT_PACKAGE: Final = "mappings"
KNOWN_SYSTEMS: Final = ("servicenow", "jira", "salesforce")
_EXPECTED_LAYOUT: Final = (
    "expected <system>.yaml, taxonomy.yaml, thresholds.yaml, policy.yaml, "
    "enrichment.yaml, policies/*.yaml, escalation/*.yaml or examples/*.json"
)
# Folders that plugins read themselves, such as slack/ with the Slack app's roles.
PLUGIN_FOLDERS = frozenset({"slack", "__pycache__"})

ModelT = TypeVar("ModelT", bound=BaseModel)


def default_mappings_dir() -> Traversable:
    """Return the folder of mapping files shipped inside the `mappings` package."""
    return resources.files(DEFAULT_PACKAGE)


def configured_mappings_dir() -> Traversable:
    """Return `OPSROUTE_MAPPINGS_DIR` when it is set, else the shipped defaults."""
    configured = CoreSettings().mappings_dir
    return configured if configured is not None else default_mappings_dir()


@dataclass(frozen=True)
class MappingSet:
    """Every mapping file of one folder, loaded and checked."""

    directory: str
    systems: Mapping[str, SystemMapping]
    taxonomy: Taxonomy
    thresholds: Thresholds
    policies: Mapping[str, PolicyFile] = field(default_factory=dict)
    escalations: Mapping[str, EscalationFile] = field(default_factory=dict)
    examples: Mapping[str, Ticket] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    policy_settings: PolicySettings | None = None
    enrichment: EnrichmentFile | None = None

    def system(self, name: str) -> SystemMapping:
        """Return the mapping of source system `name`."""
        try:
            return self.systems[name]
        except KeyError:
            known = ", ".join(sorted(self.systems)) or "none"
            raise LookupError(
                f"no mapping for system {name!r} in {self.directory}; add "
                f"{name}.yaml there or use one of: {known}"
            ) from None

    def normalize(self, system: str, record: Mapping[str, Any]) -> Ticket:
        """Turn one record of `system` into a Ticket through that system's mapping."""
        return normalize_record(system, record, mapping=self.system(system))

    def match_intent(self, ticket: Ticket) -> tuple[str, list[str]]:
        """Return the ticket's intent id and the keywords and patterns that matched."""
        return match_intent(ticket, self.taxonomy)


@dataclass
class _Collector:
    """Everything read from one folder so far, and the problems found."""

    root_name: str
    problems: list[MappingProblem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    systems: dict[str, SystemMapping] = field(default_factory=dict)
    # Systems that have a mapping file, valid or not.
    system_names: set[str] = field(default_factory=set)
    taxonomy: Taxonomy | None = None
    # Resolver group names, read from taxonomy.yaml even when it has problems.
    group_names: list[str] | None = None
    thresholds: Thresholds | None = None
    thresholds_file: str = ""
    policies: dict[str, PolicyFile] = field(default_factory=dict)
    escalations: dict[str, EscalationFile] = field(default_factory=dict)
    examples: dict[str, Ticket] = field(default_factory=dict)
    example_files: dict[str, str] = field(default_factory=dict)
    policy_settings: PolicySettings | None = None
    enrichment: EnrichmentFile | None = None

    def display(self, *parts: str) -> str:
        return "/".join((self.root_name, *parts))

    def report(self, display: str, message: str, key_path: str = "") -> None:
        self.problems.append(
            MappingProblem(
                file=display, key_path=key_path, value=NO_VALUE, message=message
            )
        )


def _is_ignored(name: str) -> bool:
    # Package files (__init__.py, __pycache__), hidden files and notes for people.
    return name.startswith((".", "_")) or name.endswith(".md")


def _root_name(directory: Traversable) -> str:
    if isinstance(directory, Path):
        return directory.resolve().name or str(directory)
    return directory.name


def _validate_model(
    model: type[ModelT], data: Any, display: str, collector: _Collector
) -> ModelT | None:
    validated, problems = validate_model(model, data, display=display)
    collector.problems.extend(problems)
    return validated


def _load_top_file(entry: Traversable, collector: _Collector) -> None:
    name = entry.name
    display = collector.display(name)
    if name.endswith(".yml"):
        collector.report(display, "unknown file; rename it to end in .yaml")
        return
    if not name.endswith(".yaml"):
        collector.report(display, f"unknown file; {_EXPECTED_LAYOUT}")
        return

    stem = name.removesuffix(".yaml")
    data, problems = read_yaml(entry, display)
    collector.files.append(display)
    collector.problems.extend(problems)
    if data is None:
        return
    if stem == "taxonomy":
        collector.taxonomy = _validate_model(Taxonomy, data, display, collector)
        collector.group_names = _group_names(collector.taxonomy, data)
    elif stem == "thresholds":
        collector.thresholds = _validate_model(Thresholds, data, display, collector)
        collector.thresholds_file = display
    elif stem == "policy":
        collector.policy_settings = _validate_model(
            PolicySettings, data, display, collector
        )
    elif stem == "enrichment":
        collector.enrichment = _validate_model(EnrichmentFile, data, display, collector)
    elif stem in KNOWN_SYSTEMS or "system" in data:
        collector.system_names.add(stem)
        mapping = _validate_model(SystemMapping, data, display, collector)
        if mapping is not None:
            mapping._source = display
            collector.problems.extend(
                check_system_mapping(mapping, file=display, stem=stem)
            )
            collector.systems[stem] = mapping
    else:
        collector.report(
            display,
            "unknown file; a system mapping needs a 'system' key, else "
            f"{_EXPECTED_LAYOUT}",
        )


def _group_names(taxonomy: Taxonomy | None, data: dict[str, Any]) -> list[str] | None:
    if taxonomy is not None:
        return taxonomy.group_names
    groups = data.get("resolver_groups")
    if not isinstance(groups, list):
        return None
    return [
        group["name"]
        for group in groups
        if isinstance(group, dict) and isinstance(group.get("name"), str)
    ]


def _load_folder(folder: Traversable, collector: _Collector) -> None:
    kind = folder.name
    if kind in PLUGIN_FOLDERS:
        return
    if kind not in ("policies", "escalation", "examples"):
        collector.report(collector.display(kind), f"unknown folder; {_EXPECTED_LAYOUT}")
        return

    suffix = ".json" if kind == "examples" else ".yaml"
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if _is_ignored(entry.name):
            continue
        display = collector.display(kind, entry.name)
        if entry.is_dir() or not entry.name.endswith(suffix):
            collector.report(
                display, f"unknown file; {kind}/ may contain only *{suffix} files"
            )
            continue
        collector.files.append(display)
        stem = entry.name.removesuffix(suffix)
        if kind == "examples":
            _load_example(entry, display, stem, collector)
            continue

        data, problems = read_yaml(entry, display)
        collector.problems.extend(problems)
        if data is None:
            continue
        if kind == "policies":
            policy = _validate_model(PolicyFile, data, display, collector)
            if policy is not None:
                collector.policies[stem] = policy
        else:
            escalation = _validate_model(EscalationFile, data, display, collector)
            if escalation is not None:
                collector.escalations[stem] = escalation


def _load_example(
    entry: Traversable, display: str, stem: str, collector: _Collector
) -> None:
    data, problems = read_json(entry, display)
    collector.problems.extend(problems)
    if data is None:
        return
    ticket = _validate_model(Ticket, data, display, collector)
    if ticket is not None:
        collector.examples[stem] = ticket
        collector.example_files[stem] = display


def _check_across_files(collector: _Collector) -> None:
    if collector.taxonomy is None and not _has_problem_in(collector, "taxonomy.yaml"):
        collector.report(
            collector.display("taxonomy.yaml"),
            "missing; add intents and resolver_groups",
        )
    if collector.thresholds is None and not _has_problem_in(
        collector, "thresholds.yaml"
    ):
        collector.report(
            collector.display("thresholds.yaml"), "missing; add at least a default"
        )
    if not collector.system_names:
        collector.report(
            collector.display(""),
            "no system mapping found; add servicenow.yaml, jira.yaml or "
            "salesforce.yaml",
        )

    if collector.taxonomy is not None:
        collector.problems.extend(
            check_taxonomy(collector.taxonomy, file=collector.display("taxonomy.yaml"))
        )
    if collector.thresholds is not None:
        collector.problems.extend(
            check_thresholds(
                collector.thresholds,
                collector.group_names,
                file=collector.thresholds_file,
                intent_ids=_intent_ids(collector),
            )
        )
    for stem, ticket in collector.examples.items():
        collector.problems.extend(
            check_example(
                ticket, collector.system_names, file=collector.example_files[stem]
            )
        )
    collector.problems.extend(
        check_policies(
            collector.policies,
            settings=collector.policy_settings,
            escalations=collector.escalations,
            group_names=collector.group_names,
            intent_ids=_intent_ids(collector),
            display=collector.display,
        )
    )


def _intent_ids(collector: _Collector) -> list[str] | None:
    if collector.taxonomy is None:
        return None
    ids = [intent.id for intent in collector.taxonomy.intents]
    return [*ids, collector.taxonomy.fallback_intent]


def _has_problem_in(collector: _Collector, name: str) -> bool:
    display = collector.display(name)
    return any(problem.file == display for problem in collector.problems)


def _collect(directory: Traversable) -> _Collector:
    collector = _Collector(root_name=_root_name(directory))
    if not directory.is_dir():
        collector.report(
            str(directory), "folder not found; pass an existing folder of mapping files"
        )
        return collector

    for entry in sorted(directory.iterdir(), key=lambda item: item.name):
        if _is_ignored(entry.name):
            continue
        if entry.is_dir():
            _load_folder(entry, collector)
        else:
            _load_top_file(entry, collector)
    _check_across_files(collector)
    return collector


def _as_folder(directory: Traversable | str | None) -> Traversable:
    if directory is None:
        return configured_mappings_dir()
    if isinstance(directory, str):
        return Path(directory)
    return directory


def validate_mappings(
    directory: Traversable | str | None = None,
) -> list[MappingProblem]:
    """Return every problem in the mapping folder, or [] when it is valid.

    Args:
        directory: the folder to check; the configured folder when None
            (`OPSROUTE_MAPPINGS_DIR`, else the defaults shipped with opsroute).
    """
    return _collect(_as_folder(directory)).problems


def load_mappings(directory: Traversable | str | None = None) -> MappingSet:
    """Load and check a mapping folder, compiling its normalizers and intents.

    Args:
        directory: the folder to load; the configured folder when None
            (`OPSROUTE_MAPPINGS_DIR`, else the defaults shipped with opsroute).

    Raises:
        MappingError: the folder has problems; the error lists all of them.
    """
    folder = _as_folder(directory)
    collector = _collect(folder)
    if collector.problems:
        logger.warning(
            "Found %d problem(s) in mapping folder %s", len(collector.problems), folder
        )
        raise MappingError(collector.problems)
    if collector.taxonomy is None or collector.thresholds is None:
        # Unreachable: _check_across_files reports a missing file as a problem.
        raise MappingError(collector.problems)

    for mapping in collector.systems.values():
        normalizer_for(mapping)
    intent_matcher(collector.taxonomy)
    logger.info(
        "Loaded %d mapping files from %s (%d systems, %d intents, %d groups)",
        len(collector.files),
        folder,
        len(collector.systems),
        len(collector.taxonomy.intents),
        len(collector.taxonomy.resolver_groups),
    )
    return MappingSet(
        directory=collector.root_name,
        systems=dict(collector.systems),
        taxonomy=collector.taxonomy,
        thresholds=collector.thresholds,
        policies=dict(collector.policies),
        escalations=dict(collector.escalations),
        examples=dict(collector.examples),
        files=tuple(collector.files),
        policy_settings=collector.policy_settings,
        enrichment=collector.enrichment,
    )
