"""Field transforms: Jira ADF, vendor date formats, Salesforce Ids, numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

import pytest

from router.mapping.schemas import TransformName
from router.mapping.transforms import (
    TRANSFORMS,
    adf_text,
    offset_datetime,
    salesforce_id18,
    sn_datetime,
    to_int,
)


def test_every_transform_name_has_function() -> None:
    assert sorted(TRANSFORMS) == sorted(get_args(TransformName))


def test_adf_text_keeps_v2_string() -> None:
    assert adf_text("h1. Title\n*bold*") == "h1. Title\n*bold*"


def test_adf_text_flattens_nested_nodes() -> None:
    document = {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "heading",
                "attrs": {"level": 2},
                "content": [{"type": "text", "text": "Steps"}],
            },
            {
                "type": "bulletList",
                "content": [
                    {
                        "type": "listItem",
                        "content": [
                            {
                                "type": "paragraph",
                                "content": [
                                    {"type": "text", "text": "Ask "},
                                    {"type": "mention", "attrs": {"text": "@Ana"}},
                                ],
                            }
                        ],
                    }
                ],
            },
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "line one"},
                    {"type": "hardBreak"},
                    {"type": "text", "text": "line two"},
                ],
            },
        ],
    }
    assert adf_text(document) == "Steps\nAsk @Ana\n\nline one\nline two"


def test_adf_text_rejects_other_mapping() -> None:
    with pytest.raises(ValueError, match="expected an ADF document"):
        adf_text({"type": "paragraph"})


def test_sn_datetime_is_utc() -> None:
    assert sn_datetime("2024-01-15 10:22:33") == datetime(
        2024, 1, 15, 10, 22, 33, tzinfo=UTC
    )


def test_sn_datetime_rejects_iso_t() -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD HH:MM:SS"):
        sn_datetime("2024-01-15T10:22:33")


def test_offset_datetime_reads_salesforce() -> None:
    assert offset_datetime("2024-01-15T10:22:33.000+0000") == datetime(
        2024, 1, 15, 10, 22, 33, tzinfo=UTC
    )


def test_offset_datetime_rejects_naive() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        offset_datetime("2024-01-15T10:22:33")


def test_offset_datetime_rejects_text() -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        offset_datetime("yesterday")


def test_salesforce_id18_adds_checksum() -> None:
    assert salesforce_id18("5007000000OFL5F") == "5007000000OFL5FAAX"


def test_salesforce_id18_keeps_18_chars() -> None:
    assert salesforce_id18("0015e00000AbCdEAAV") == "0015e00000AbCdEAAV"


def test_salesforce_id18_checksum_sees_case() -> None:
    assert (
        salesforce_id18("001abcdeABCDE12")[-3:]
        != salesforce_id18("001ABCDEabcde12")[-3:]
    )


@pytest.mark.parametrize("value", ["500", "5007000000OFL5F!", "5007000000OFL5FAA"])
def test_salesforce_id18_rejects_bad_ids(value: str) -> None:
    with pytest.raises(ValueError, match="15 or 18"):
        salesforce_id18(value)


def test_to_int_reads_string() -> None:
    assert to_int(" 3 ") == 3


def test_to_int_rejects_boolean() -> None:
    with pytest.raises(ValueError, match="not a boolean"):
        to_int(True)
