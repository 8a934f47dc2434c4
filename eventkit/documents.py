"""Files people write (a district file, a contact book): YAML read into a model, with every
problem listed in words a clerk can act on. Pure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def parse_yaml(
    text: str,
    model: type[M],
    *,
    source: str,
    refuse: Callable[[Sequence[str]], Exception],
) -> M:
    """``text`` (YAML, a mapping at the top) as ``model``; otherwise ``refuse(problems)``
    is raised, each problem naming ``source`` and where in the file it is."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise refuse([f"{source}: YAML 格式错误 / invalid YAML: {exc}"]) from exc
    if not isinstance(data, dict):
        raise refuse([f"{source}: 顶层须为映射 / the top level must be a mapping"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise refuse(
            [f"{source}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        ) from exc
