"""TOML text as a person wrote it: find where a key is set, change a value in place.

A config file carries its author's comments and layout. Re-serialising a
parsed config would throw them away, so edits that must keep them (reverting
one key in the dashboard's editor) change only the value on the key's line.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

import tomli_w

_HEADER = re.compile(r"\s*\[{1,2}\s*([A-Za-z0-9_.\s-]+?)\s*\]")
_KEY_LINE = re.compile(r"\s*([A-Za-z0-9_.\s-]+?)\s*=")


def _paths(text: str) -> Iterator[tuple[int, list[str]]]:
    """(1-based line, key path) for each [table] header and key assignment in text."""
    table: list[str] = []  # the path of the current [table] header; [] is the top level
    for number, line in enumerate(text.split("\n"), 1):
        if header := _HEADER.match(line):
            table = [part.strip() for part in header.group(1).split(".")]
            yield number, table
        elif key := _KEY_LINE.match(line):
            yield number, table + [part.strip() for part in key.group(1).split(".")]


def key_line(text: str, dotted: str) -> int | None:
    """The 1-based line where a dotted key (or a section's header) is set, if found."""
    target = dotted.split(".")
    return next((number for number, path in _paths(text) if path[: len(target)] == target), None)


def key_at(text: str, line: int) -> str | None:
    """The dotted key assigned on a 1-based line, if that line assigns one."""
    for number, path in _paths(text):
        if number == line:
            return ".".join(path) if len(path) > 1 else None
    return None


def toml_value(value: object) -> str:
    """A value as TOML source, e.g. 0.001, true, "text"."""
    return tomli_w.dumps({"v": value}).removeprefix("v = ").rstrip("\n")


def _parses(value_text: str) -> bool:
    """Whether value_text is exactly one TOML value."""
    try:
        tomllib.loads(f"v = {value_text}")
    except (tomllib.TOMLDecodeError, ValueError, RecursionError):
        return False
    return True


def _replace_on_line(line: str, new_value: str) -> str | None:
    """line with the value after its first "=" replaced, its comment kept in place."""
    prefix, equals, rest = line.partition("=")
    if not equals:
        return None
    start = len(rest) - len(rest.lstrip())
    # The value ends at the first "#" (or the line's end) before which it parses;
    # an earlier "#" may sit inside a string.
    for end in [i for i, ch in enumerate(rest) if ch == "#"] + [len(rest)]:
        old_value = rest[start:end].rstrip()
        if old_value and _parses(old_value):
            after = rest[start + len(old_value) :]
            if after.strip():  # keep the comment's column when the spacing allows it
                pad = len(after) - len(after.lstrip())
                after = " " * max(1, pad + len(old_value) - len(new_value)) + after.lstrip()
            return f"{prefix}{equals}{rest[:start]}{new_value}{after}"
    return None


def _read(text: str, dotted: str) -> object:
    """The value text sets at a dotted key, or None when unset or unparsable."""
    try:
        node: object = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError, RecursionError):
        return None
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def set_value(text: str, dotted: str, value: object) -> str | None:
    """text with `section.key` set to value, comments kept; None where that cannot be done.

    A key set on its own line gets its value replaced; a key not set at all is
    added under its section's header (or in a new section at the end). The
    result is checked by parsing it, so a layout this cannot edit (inline
    tables, multi-line strings) gives None rather than a wrong file.
    """
    section, _, key = dotted.partition(".")
    lines = text.split("\n")
    number = key_line(text, dotted)
    assignment = f"{key} = {toml_value(value)}"
    if number is not None:
        replaced = _replace_on_line(lines[number - 1], toml_value(value))
        if replaced is None:
            return None
        lines[number - 1] = replaced
        edited = "\n".join(lines)
    elif (header := key_line(text, section)) is not None:
        lines.insert(header, assignment)
        edited = "\n".join(lines)
    else:
        before = text.rstrip("\n") + "\n\n" if text.strip() else ""
        edited = f"{before}[{section}]\n{assignment}\n"
    found = _read(edited, dotted)
    return edited if found == value and type(found) is type(value) else None
