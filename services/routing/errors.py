"""What routing's application layer refuses, in words for people (zh-CN and English).

Each derives from a kind of :mod:`eventkit.refusals`, which says the HTTP status at the
edge; the case's own refusals (an illegal transition, someone else's case) are in
:mod:`services.routing.domain`.
"""

from __future__ import annotations

from eventkit.refusals import Conflict, InvalidInput, NotFound


class RoutingError(InvalidInput):
    """A request routing cannot carry out as asked."""

    code = "routing-error"

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(zh, en)


class CaseNotFound(NotFound):
    """No such case in the caller's district (another district's case is "not found")."""

    code = "case-not-found"

    def __init__(self, case_id: str) -> None:
        super().__init__(f"案件 {case_id} 不存在", f"no case {case_id}")
        self.case_id = case_id


class UnknownDistrict(NotFound):
    """The district is not registered in the directory."""

    code = "district-not-found"

    def __init__(self, district_id: str) -> None:
        super().__init__(f"区 {district_id} 未登记", f"district {district_id} is not registered")
        self.district_id = district_id


class DirectoryNotFound(NotFound):
    """No such station or representative."""

    code = "not-found"

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(zh, en)


class CaseBusy(Conflict):
    """The case kept changing under us: try again."""

    code = "conflict"

    def __init__(self) -> None:
        super().__init__(
            "案件正被他人同时处理，请稍后重试",
            "the case is being changed by someone else; please retry",
        )
