"""Open311 GeoReport v2 documents as the specification writes them. Pure."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

import pytest

from services.intake import open311_format as fmt

NOW = datetime(2025, 3, 14, 1, 30, tzinfo=UTC)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_open311_errors_are_an_errors_document_in_both_formats() -> None:
    xml = fmt.render_errors("xml", [(403, "Invalid api_key received")])
    assert xml.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    root = ET.fromstring(xml)
    assert root.tag == "errors"
    assert [(e.findtext("code"), e.findtext("description")) for e in root] == [
        ("403", "Invalid api_key received")
    ]
    assert fmt.render_errors("json", [(403, "x")]) == b'[{"code": 403, "description": "x"}]'


def test_open311_nested_lists_use_the_specifications_element_names() -> None:
    document = fmt.discovery("https://m.example.cn", "联络办", NOW, SHANGHAI)
    root = ET.fromstring(fmt.render_object("xml", "discovery", document))
    endpoint = root.find("endpoints/endpoint")
    assert endpoint is not None
    assert endpoint.findtext("url") == "https://m.example.cn/open311/v2"
    assert [f.text for f in endpoint.findall("formats/format")] == [
        "text/xml",
        "application/json",
    ]
    assert root.findtext("changeset") == "2025-03-14T09:30:00+08:00"


def test_open311_dates_are_w3c_with_their_offset() -> None:
    assert fmt.w3c(NOW, SHANGHAI) == "2025-03-14T09:30:00+08:00"
    assert fmt.parse_w3c("2025-03-14T01:30:00Z", SHANGHAI) == NOW
    assert fmt.parse_w3c("2025-03-14", SHANGHAI) == datetime(2025, 3, 14, tzinfo=SHANGHAI)
    assert fmt.parse_w3c("2025-03-14T09:30:00", SHANGHAI) == NOW
    with pytest.raises(ValueError, match="Invalid isoformat"):
        fmt.parse_w3c("yesterday", SHANGHAI)


def test_the_xml_writer_drops_characters_xml_does_not_allow() -> None:
    body = fmt.render_list(
        "xml", "service_requests", "request", [{"description": "坏\x01了\ufffe\x7f\n"}]
    )
    root = ET.fromstring(body)
    assert root.findtext("request/description") == "坏了\x7f\n"
