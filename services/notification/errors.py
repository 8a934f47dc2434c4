"""What the notification service refuses, in words for people (zh-CN and English)."""

from __future__ import annotations

from collections.abc import Sequence

from eventkit.refusals import InvalidInput, NotFound


class ContactNotFound(NotFound):
    """No contact with that staff id in the caller's district."""

    code = "contact-not-found"

    def __init__(self, staff_id: str) -> None:
        super().__init__(f"联系人 {staff_id} 不存在", f"no contact {staff_id}")


class SubscriptionNotFound(NotFound):
    """No subscription with that id in the caller's district."""

    code = "subscription-not-found"

    def __init__(self, subscription_id: str) -> None:
        super().__init__(f"订阅 {subscription_id} 不存在", f"no subscription {subscription_id}")


class UnknownRule(NotFound):
    """No rule or template of that name."""

    code = "rule-not-found"

    def __init__(self, name: str) -> None:
        super().__init__(f"没有名为 {name} 的规则或模板", f"no rule or template {name}")


class InvalidContactFile(InvalidInput):
    """A contact book file that cannot be imported; ``problems`` lists why."""

    code = "invalid-contact-file"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(
            "联系人文件有误",
            "Invalid contact file",
            "；".join(self.problems[:20]),
            "; ".join(self.problems[:20]),
            extra={"problems": self.problems},
        )


class InvalidTemplate(InvalidInput):
    """A template that does not compile, or uses what it may not."""

    code = "invalid-template"

    def __init__(self, reason: str) -> None:
        super().__init__("模板有误", "Invalid template", reason, reason)
