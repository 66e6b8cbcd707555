"""Loading a YAML config file into a typed model, with errors that name the file, the YAML path and what is allowed.

Shared by `menus`, `routing` and `ivr`; pure apart from reading the one file it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base for config models: unknown keys are errors, values are frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Problem:
    """One mistake (or, with severity "warning", one doubt) in a config file, located by file and YAML path."""

    file: str
    path: str
    message: str
    severity: str = "error"  # or "warning": reported, but the file still loads

    def __str__(self) -> str:
        mark = "warning: " if self.severity == "warning" else ""
        return f"{self.file}: {self.path or '<top>'}: {mark}{self.message}"


class ConfigError(Exception):
    """One or more problems in a config file; str() lists each on its own line."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def yaml_path(loc: tuple[Any, ...]) -> str:
    """('campaigns', 2, 'opens') -> 'campaigns[2].opens'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _problems_from(file: str, err: ValidationError) -> list[Problem]:
    problems = []
    for e in err.errors(include_url=False):
        # pydantic puts the model/validator name in loc for unions; keep only the data path
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not allowed here)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        problems.append(Problem(file, yaml_path(loc), msg))
    return problems


def read_yaml(path: Path) -> Any:
    """The parsed contents of a YAML config file, or ConfigError saying why it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([Problem(str(path), "", f"cannot read the file: {e.strerror or e}")]) from None
    except UnicodeDecodeError as e:
        raise ConfigError([Problem(str(path), f"byte {e.start}", "not UTF-8 text; save the file as UTF-8")]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(e, "problem", None) or str(e)
        raise ConfigError([Problem(str(path), where, f"YAML syntax error: {reason}")]) from None


def load_model(path: Path, model: type[M], data: Any = None) -> M:
    """Validate `data` (read from `path` when None) as `model`, or raise ConfigError naming file and YAML path."""
    if data is None:
        data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError([Problem(str(path), "", "expected a mapping at the top of the file")])
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_problems_from(str(path), e)) from None
