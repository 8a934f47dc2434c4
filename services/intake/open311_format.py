"""Open311 GeoReport v2 documents, in XML and JSON, as the specification writes them.

Pure: data in, bytes out. XML is schemaless, without namespace, UTF-8 with its
declaration; JSON follows the Spark convention (a list element becomes an array, the
root of a list response is the array itself; empty elements become null). Dates are
W3C date-times with their offset. Ids are strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta
from typing import Any, Final, Literal, cast
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

from services.intake.progress import STAGE_WORDS, Names, Step, open311_status
from services.intake.taxonomy import Category
from services.intake.text import mask_personal_numbers
from services.intake.tracking_views import RequestView, agency_responsible, describe

Format = Literal["xml", "json"]
FORMATS: Final[tuple[Format, ...]] = ("xml", "json")
CONTENT_TYPE: Final[dict[Format, str]] = {
    "xml": "text/xml; charset=utf-8",
    "json": "application/json; charset=utf-8",
}
SPECIFICATION: Final = "http://wiki.open311.org/GeoReport_v2"

_LIST_ITEMS: Final[dict[str, str]] = {
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}
"""The element of each item of a nested list (XML), per the specification."""


_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 does not allow (a second guard: intake strips controls already)."""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _element(tag: str, value: Any) -> ET.Element:
    element = ET.Element(tag)
    if isinstance(value, Mapping):
        for key, child in value.items():
            element.append(_element(key, child))
    elif isinstance(value, list):
        item_tag = _LIST_ITEMS.get(tag, "item")
        for child in value:
            element.append(_element(item_tag, child))
    else:
        element.text = _text(value)
    return element


def _xml(root: ET.Element) -> bytes:
    body = cast(bytes, ET.tostring(root, encoding="utf-8", xml_declaration=False))
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body


def render_list(fmt: Format, root: str, item: str, items: Sequence[Mapping[str, Any]]) -> bytes:
    """A list response: ``<root><item>…</item>…</root>`` or a JSON array."""
    if fmt == "json":
        return json.dumps(list(items), ensure_ascii=False).encode()
    element = ET.Element(root)
    for entry in items:
        element.append(_element(item, entry))
    return _xml(element)


def render_object(fmt: Format, root: str, value: Mapping[str, Any]) -> bytes:
    """A single-object response (service definition, discovery)."""
    if fmt == "json":
        return json.dumps(value, ensure_ascii=False).encode()
    return _xml(_element(root, value))


def render_errors(fmt: Format, errors: Sequence[tuple[int | str, str]]) -> bytes:
    """``<errors><error><code/><description/></error></errors>`` or its JSON array."""
    return render_list(
        fmt, "errors", "error", [{"code": code, "description": text} for code, text in errors]
    )


def w3c(value: datetime | None, tz: ZoneInfo) -> str | None:
    """A date-time in the W3C profile of ISO 8601, with its offset, to the second."""
    return None if value is None else value.astimezone(tz).isoformat(timespec="seconds")


_DATE_ONLY: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_w3c(value: str, tz: ZoneInfo) -> datetime:
    """A W3C date-time from a query; a date alone is midnight and a missing offset is the
    district's time zone. :class:`ValueError` when it is not a date."""
    text = value.strip()
    if _DATE_ONLY.match(text):
        return datetime.combine(datetime.fromisoformat(text).date(), time(0), tzinfo=tz)
    parsed = datetime.fromisoformat(text.replace("z", "Z"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


MAX_SPAN: Final = timedelta(days=90)


def service(category: Category) -> dict[str, Any]:
    """A category as an Open311 service."""
    description = category.description or (
        f"{category.name_zh} / {category.name_en}" if category.name_en else category.name_zh
    )
    return {
        "service_code": category.code,
        "service_name": category.name_zh,
        "description": description,
        "metadata": False,
        "type": "realtime",
        "keywords": ", ".join(category.keywords),
        "group": category.group,
    }


def service_definition(category: Category) -> dict[str, Any]:
    """The definition of a service: no extra attributes (``metadata`` is false)."""
    return {"service_code": category.code, "attributes": []}


PUBLISHED_CHANNELS: Final = frozenset({"open311", "online"})
"""Channels whose residents wrote for a public web form: their text and address may be
shown to anyone. What was said at a walk-in, by a spokesperson, on a visit or to 12345
was not written to be published: those show the service's name and no address."""
RESIDENT_CHANNELS: Final = frozenset({"qr", "online", "open311"})
"""Channels where residents sent their own report (the QR form, the web, an Open311
client): its attachment is theirs to show. On every other channel (walk-in, visit,
spokesperson, 12345) a staff member took the picture, of a home or a face as often as of
a pothole: never shown."""
POSITION_DECIMALS: Final = 3
"""Public positions are rounded to 0.001° (about 110 m north-south, 85 m east-west at
Beijing's latitude): enough to put a report on a map or find its cluster, not enough to
point at one building's door."""


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, POSITION_DECIMALS)


def _public_address(channel: str, address: str | None, community: str | None) -> str | None:
    """Where the matter is, as coarsely as the coordinates: the community; an Open311
    client's own ``address_string`` when it gave no community (the client publishes it
    itself). What a resident typed into our web form ("8号楼2单元") may be their door:
    never shown."""
    if channel not in PUBLISHED_CHANNELS:
        return None
    return community or (address if channel == "open311" else None)


def public_url(url: str | None) -> str | None:
    """A link fit to hand to a browser: an absolute http(s) URL with a host and nothing
    that could end an attribute or hide its target (spaces, controls, quotes, angle
    brackets, bidirectional overrides); None for anything else (``javascript:``,
    ``data:``, relative paths)."""
    if not url or _UNSAFE_IN_URL.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        return None
    return url


_UNSAFE_IN_URL: Final = re.compile(
    "[\\x00-\\x20\\x7f\"'<>\\\\`\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]"
)


def service_request(
    view: RequestView,
    names: Names,
    *,
    publish_description: bool,
) -> dict[str, Any]:
    """An opinion and its case as an Open311 service request, in the spec's order."""
    opinion, progress = view.opinion, view.progress
    tz = names.timezone
    stage_zh, _ = STAGE_WORDS[view.stage]
    note = progress.public_note if progress else None  # staff's own notes never
    status_notes = f"{stage_zh}：{note}" if note else stage_zh
    code = view.service_code
    category = names.categories.get(code or "")
    service_name = category[0] if category else None
    public = opinion.channel in PUBLISHED_CHANNELS
    description = (
        mask_personal_numbers(opinion.text) if publish_description and public else service_name
    )
    return {
        "service_request_id": opinion.opinion_id,
        "status": open311_status(view.stage),
        "status_notes": mask_personal_numbers(status_notes),
        "service_name": service_name,
        "service_code": code,
        "description": description,
        "agency_responsible": agency_responsible(progress, names) if progress else None,
        "service_notice": None,
        "requested_datetime": w3c(opinion.submitted_at, tz),
        "updated_datetime": w3c(view.updated_at, tz),
        "expected_datetime": w3c(progress.resolution_due, tz) if progress else None,
        "address": _public_address(opinion.channel, opinion.address, opinion.community),
        "address_id": None,
        "zipcode": None,
        "lat": _rounded(opinion.lat),
        "long": _rounded(opinion.long),
        "media_url": (
            public_url(opinion.attachments[0])
            if opinion.attachments and opinion.channel in RESIDENT_CHANNELS
            else None
        ),
    }


def request_update(opinion_id: str, step: Step, names: Names) -> dict[str, Any]:
    """A case event as one of mySociety's service request updates: its words as anyone
    may read them, the evidence only when staff marked the resolution public."""
    zh, _ = describe(step, names, public=True)
    return {
        "update_id": step.event_id,
        "service_request_id": opinion_id,
        "status": step.status.value,
        "updated_datetime": w3c(step.at, names.timezone),
        "description": mask_personal_numbers(zh),
        "media_url": public_url(step.media_url) if step.public else None,
        "external_status_code": step.kind,
    }


def created(opinion_id: str, notice: str) -> dict[str, Any]:
    """The answer to POST requests: the id at once (realtime), never a token."""
    return {"service_request_id": opinion_id, "service_notice": notice, "account_id": None}


def discovery(base_url: str, contact: str, changeset: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """The Service Discovery document of this endpoint."""
    stamp = w3c(changeset, tz)
    return {
        "changeset": stamp,
        "contact": contact,
        "key_service": "api_key：向区人大常委会代表联络工作室申请 / ask the district's liaison "
        "office for an api_key",
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": f"{base_url.rstrip('/')}/open311/v2",
                "changeset": stamp,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }
