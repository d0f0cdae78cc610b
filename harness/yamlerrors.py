"""Map pydantic validation errors back to lines of the YAML file they came from.

Shared by every YAML file the lab reads (topologies, scenarios, suites), so a
user always sees ``steps[3].amount_sat (line 17): ...`` rather than a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


def read_text(path: Path) -> tuple[str, None] | tuple[None, str]:
    """A file's text, or why it cannot be read as UTF-8 text (a directory, no permission, binary)."""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        return None, "is a directory, not a YAML file"
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror or exc}"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, f"is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); YAML files must be UTF-8"


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that also remembers the line of every mapping key and item."""


def _line_map(text: str) -> dict[tuple[Any, ...], int]:
    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[Any, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value
                lines[(*path, key)] = k.start_mark.line + 1
                walk(v, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    try:
        root = yaml.compose(text, Loader=_LineLoader)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def _fmt_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _locate(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> str:
    path = tuple("from" if p == "from_" else p for p in loc)
    for cut in range(len(path), -1, -1):
        if path[:cut] in lines:
            return f"{_fmt_loc(path)} (line {lines[path[:cut]]})"
    return _fmt_loc(path)


def yaml_syntax_problem(exc: yaml.YAMLError) -> tuple[str, str]:
    """(where, message) for a YAML syntax error."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return where, f"YAML syntax error: {problem}"


def validation_problems(
    exc: ValidationError, lines: dict[tuple[Any, ...], int], *, drop: tuple[str, ...] = ()
) -> list[tuple[str, str]]:
    """(location with line, message) per pydantic error.

    Union and tagged-union errors carry internal parts in ``loc`` (validator
    names, ``literal[...]``, the tag value); those are dropped so the path is
    the one the user typed. ``drop`` names further parts to hide.
    """
    problems = []
    for err in exc.errors():
        loc = tuple(
            p for p in err["loc"] if not (isinstance(p, str) and (p.startswith(("function-", "literal[")) or p in drop))
        )
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        problems.append((_locate(loc, lines), msg))
    return problems
