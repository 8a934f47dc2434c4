"""Intake's refusals, each a kind of :mod:`eventkit.refusals` so that the edge knows its
HTTP status without being told (422 for input, 401, 403, 404, 409), with the reason in
Simplified Chinese and English.

Pure: raised by the rules and the handlers alike. Open311 writes the same refusals in its
own error document (``open311.py``); the pages show them on the form.
"""

from __future__ import annotations

from collections.abc import Sequence

from contracts import Channel
from eventkit.refusals import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)


class InvalidSubmission(InvalidInput):
    """One or more fields are wrong; ``errors`` lists every one of them."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        first = errors[0]
        several = len(errors) > 1
        super().__init__(
            "提交的内容有误" if several else first.message,
            "The submission has errors" if several else first.message_en,
            "；".join(e.message for e in errors),
            "; ".join(e.message_en for e in errors),
            code="invalid-opinion" if several else first.code,
            errors=errors,
        )


class UnknownStation(InvalidInput):
    """No station has this code (in this district)."""

    code = "unknown-station"

    def __init__(self, station_code: str) -> None:
        super().__init__(
            "联络站不存在",
            "Unknown station",
            f"没有编号为「{station_code}」的代表联络站，请核对二维码或站点编号",
            f"There is no liaison station with the code {station_code!r}",
        )


class AmbiguousStation(InvalidInput):
    """The station code exists in several districts: the district must be given."""

    code = "ambiguous-station"

    def __init__(self, station_code: str, districts: Sequence[str]) -> None:
        super().__init__(
            "请注明所属区",
            "Please name the district",
            f"多个区都有编号为「{station_code}」的联络站：{'、'.join(districts)}",
            f"Several districts have a station {station_code!r}: {', '.join(districts)}",
        )


class UnknownDistrict(InvalidInput):
    """No district has this code."""

    code = "unknown-district"

    def __init__(self, district_id: str) -> None:
        super().__init__(
            "所属区不存在",
            "Unknown district",
            f"没有编号为「{district_id}」的区",
            f"There is no district with the code {district_id!r}",
        )


class StaffTokenRequired(Unauthenticated):
    """A staff channel used without a staff token."""

    code = "staff-token-required"

    def __init__(self, channel: Channel) -> None:
        super().__init__(
            "此渠道需要工作人员令牌",
            "This channel needs a staff token",
            f"「{channel.value}」渠道的意见须由工作人员登记，请在 Authorization 头中提供令牌",
            f"Opinions of the {channel.value!r} channel are registered by staff: "
            "send a Bearer token",
        )


class NotAllowed(Forbidden):
    """The caller's role or district does not allow this; ``code`` says which rule."""


class Refused(Conflict):
    """The resident cannot do this now: rate (not resolved yet, or already rated) or
    withdraw (already handled, or already withdrawn); ``code`` says which."""


class TrackingNotFound(NotFound):
    """No opinion has this tracking code (or it is not one): the same answer for both."""

    code = "tracking-code-not-found"

    def __init__(self) -> None:
        super().__init__(
            "查询码不存在",
            "Unknown tracking code",
            "请核对查询码（12 位字母和数字，不区分大小写）",
            "Check the code: 12 letters and digits, case does not matter",
        )


class OpinionNotFound(NotFound):
    """No opinion with this id, as far as the caller may know (another district's
    opinion is not found either)."""

    code = "opinion-not-found"

    def __init__(self) -> None:
        super().__init__("意见不存在", "No such opinion")


class IdempotencyKeyReused(InvalidInput):
    """The key was used before with a different request."""

    code = "idempotency-key-reused"

    def __init__(self) -> None:
        super().__init__(
            "幂等键已用于另一份不同的提交",
            "This Idempotency-Key was already used for a different request",
            "重试时请原样提交相同内容；新的提交请使用新的幂等键",
            "Retry with exactly the same body, or use a new key for a new submission",
        )
