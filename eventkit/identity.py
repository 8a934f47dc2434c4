"""Who is calling: staff roles and the principal of a verified token.

Pure (no I/O, no token library), so that a service's domain can decide by role without
importing how tokens are made; ``eventkit.auth`` issues and verifies the tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What a staff member may do."""

    LIAISON = "liaison"  # 联络员
    REPRESENTATIVE = "representative"  # 代表
    SPOKESPERSON = "spokesperson"  # 群众代言员
    STREET_SUPERVISOR = "street_supervisor"  # 街道工委
    DISTRICT_ADMIN = "district_admin"  # 区管理员
    AUDITOR = "auditor"  # 审计（只读）
    HOTLINE = "hotline"  # 12345 热线对接
    DEPARTMENT = "department"  # 职能部门工作人员：只见吹哨给本部门的案件
    COMMUNITY_COMMISSIONER = "community_commissioner"  # 社区专员：吹哨
    DISTRICT_OFFICE = "district_office"  # 区人大联络办工作人员


@dataclass(frozen=True)
class Principal:
    """Who is calling: from a verified token."""

    subject: str
    role: Role
    district_id: str

    def may_act_in(self, district_id: str) -> bool:
        """Whether the caller may see or change data of ``district_id``."""
        return self.district_id == district_id
