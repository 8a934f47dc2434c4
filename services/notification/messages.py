"""Messages from templates: Jinja2, Simplified Chinese first and English second.

Each template is a subject and a body (``templates/<name>.txt``: the subject's line, a
line ``---``, the body). A district may override a template (the admin API); overrides
run in Jinja2's sandbox with undefined names refused, so a template can only say what it
is given. Pure: rendering, no I/O beyond reading the package's own template files once.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2 import Template as JinjaTemplate
from jinja2.sandbox import SandboxedEnvironment

from services.notification.errors import InvalidTemplate, UnknownRule

SEPARATOR = "\n---\n"
TEMPLATES = (
    "urgent_case",
    "case_assigned",
    "case_transferred",
    "receipt",
    "resident_replied",
    "resident_resolved",
    "resident_suggestion",
    "overdue",
    "department_whistle",
    "department_reminder",
    "resident_suggestion_answered",
    "case_reopened",
)
"""The templates the rules use (subscriber webhooks carry the event itself instead)."""

_ENV = SandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
)


@dataclass(frozen=True)
class Template:
    """A message's subject and body, as Jinja2 source."""

    subject: str
    body: str

    @classmethod
    def parse(cls, text: str) -> Template:
        """``subject`` ``\\n---\\n`` ``body``."""
        subject, sep, body = text.partition(SEPARATOR)
        if not sep:
            raise InvalidTemplate("模板须为「主题 --- 正文」/ a template is: subject, ---, body")
        return cls(subject.strip(), body.strip() + "\n")

    def check(self) -> None:
        """Compile both parts; :class:`InvalidTemplate` with the reason when one does not."""
        for part in (self.subject, self.body):
            try:
                _ENV.from_string(part)
            except TemplateError as exc:
                raise InvalidTemplate(str(exc)) from exc


@dataclass(frozen=True)
class Message:
    """A message ready for a channel."""

    subject: str
    body: str

    @property
    def text(self) -> str:
        """Subject and body in one text (SMS, robots)."""
        return f"{self.subject}\n{self.body}".strip()


@cache
def default_template(name: str) -> Template:
    """The template shipped with the service."""
    if name not in TEMPLATES:
        raise UnknownRule(name)
    files = importlib.resources.files("services.notification").joinpath("templates")
    return Template.parse(files.joinpath(f"{name}.txt").read_text(encoding="utf-8"))


@lru_cache(maxsize=1024)
def _compiled(source: str) -> JinjaTemplate:
    """A template's source compiled once (compiling costs far more than rendering)."""
    return _ENV.from_string(source)


def render(template: Template, context: Mapping[str, Any]) -> Message:
    """The message ``template`` makes of ``context``; :class:`InvalidTemplate` when it uses
    a name the context lacks or anything the sandbox forbids."""
    try:
        subject = _compiled(template.subject).render(context)
        body = _compiled(template.body).render(context)
    except TemplateError as exc:
        raise InvalidTemplate(str(exc)) from exc
    return Message(" ".join(subject.split()), body.strip())
