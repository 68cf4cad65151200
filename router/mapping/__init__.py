"""Mapping files: schemas, loading and checks, record normalization, intent matching."""

from __future__ import annotations

from router.mapping.errors import (
    NO_VALUE,
    MappingError,
    MappingProblem,
    NormalizationError,
)
from router.mapping.intents import IntentMatcher, match_intent
from router.mapping.loader import (
    MappingSet,
    configured_mappings_dir,
    default_mappings_dir,
    load_mappings,
    validate_mappings,
)
from router.mapping.normalize import RecordNormalizer, normalize_record
from router.mapping.schemas import (
    EscalationFile,
    FieldSpec,
    Intent,
    PolicyFile,
    ResolverGroup,
    SystemMapping,
    Taxonomy,
    Thresholds,
    ValueMap,
)

__all__ = [
    "NO_VALUE",
    "EscalationFile",
    "FieldSpec",
    "Intent",
    "IntentMatcher",
    "MappingError",
    "MappingProblem",
    "MappingSet",
    "NormalizationError",
    "PolicyFile",
    "RecordNormalizer",
    "ResolverGroup",
    "SystemMapping",
    "Taxonomy",
    "Thresholds",
    "ValueMap",
    "configured_mappings_dir",
    "default_mappings_dir",
    "load_mappings",
    "match_intent",
    "normalize_record",
    "validate_mappings",
]
