"""Loading definitions files: YAML text -> checked msgpack document for the core.

The Rust core validates structure and semantics (``Catalog.compile``); this module
parses the YAML, checks message templates with the sandboxed template engine, and
turns every problem into one ``DefinitionsInvalid`` naming the file, the path inside
it and what is wrong. An invalid file changes nothing anywhere.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgpack
import yaml

from cairn import _core
from cairn.channels.templates import check_template

_MESSAGE_FIELDS = ("text", "subject", "html", "title")


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans and numbers. YAML 1.1 would read a decision's ``yes:``/``no:``
    branch keys (and on/off) as booleans, and a time like ``21:00`` as the base-60
    number 1260."""


_BOOL, _INT, _FLOAT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(_INT, re.compile(r"^(?:[-+]?[0-9]+|0x[0-9a-fA-F]+)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    _FLOAT, re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
                       r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))


def load_yaml(text: str) -> object:
    """Parse YAML the way definitions files are read (YAML 1.2 booleans)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


@dataclass
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class DefinitionsInvalid(Exception):
    """A definitions file that cannot be applied; ``problems`` lists every reason."""

    def __init__(self, name: str, problems: list[Problem]) -> None:
        self.name = name
        self.problems = problems
        lines = "\n".join(f"  {name}: {p}" for p in problems)
        super().__init__(f"{name}: {len(problems)} problem(s), nothing was applied:\n{lines}")


def parse(text: str, name: str, version: int = 1,
          previous: _core.Catalog | None = None) -> tuple[bytes, _core.Catalog]:
    """Parse and check definitions text; return the msgpack document for the core
    and its catalog compiled at ``version`` (after ``previous``, whose unchanged
    programs keep their versions)."""
    return parse_doc(read_doc(text, name), name, version, previous)


def read_doc(text: str, name: str) -> dict[str, Any]:
    """The YAML mapping in ``text``; ``DefinitionsInvalid`` (naming the line) when
    it is not valid YAML or not a mapping."""
    try:
        doc = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise DefinitionsInvalid(name, [Problem(where, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise DefinitionsInvalid(name, [Problem("", f"the file must hold a mapping, got {type(doc).__name__}")])
    return doc


def parse_doc(doc: dict[str, Any], name: str, version: int = 1,
              previous: _core.Catalog | None = None) -> tuple[bytes, _core.Catalog]:
    """``parse`` for a document already read from YAML (a mapping)."""
    problems = list(_template_problems(doc))
    packed = msgpack.packb(doc, default=_yaml_scalar, use_bin_type=True)
    catalog = None
    try:
        catalog = _core.Catalog.compile(packed, version, previous)
    except _core.DefinitionError as exc:
        problems.extend(Problem(path, message) for path, message in exc.errors)
    if problems or catalog is None:
        raise DefinitionsInvalid(name, problems)
    return packed, catalog


def unknown_types(packed: bytes, summary: dict[str, Any], seen: set[str]) -> list[str]:
    """Warnings for event types the programs and rules reference that are neither
    declared, built in, nor seen by the engine yet (likely typos; with
    ``strict_types: true`` they are errors instead)."""
    doc = msgpack.unpackb(packed, raw=False)
    known = set(summary["interaction_types"]) | set(summary["builtin_types"]) | seen
    warnings = []
    for path, kind in _event_refs(doc):
        # `$join` is a loyalty rule's occasion (joining), not an event type.
        if kind.lower() not in known and kind != "$join":
            warnings.append(f"{path}: event type '{kind}' is not declared, built in, or seen yet")
    return warnings


def _event_refs(doc: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, type) of every `event:` key holding a type name, anywhere in ``doc``."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            here = f"{path}.{key}" if path else str(key)
            # Under `attributes:` or `set:`, `event` names an attribute or a field.
            if key == "event" and isinstance(value, str) and path.split(".")[-1] not in ("attributes", "set"):
                yield here, value
            else:
                yield from _event_refs(value, here)
    elif isinstance(doc, list):
        for i, item in enumerate(doc):
            yield from _event_refs(item, f"{path}[{i}]")


def _yaml_scalar(obj: Any) -> Any:
    # YAML turns unquoted 2026-11-23 into a date: hand the core its ISO text.
    if isinstance(obj, (dt.date, dt.datetime)):
        return obj.isoformat()
    raise TypeError(f"cannot encode {type(obj).__name__} value {obj!r}")


def _template_problems(doc: dict[str, Any]) -> Iterator[Problem]:
    programs = doc.get("programs")
    if not isinstance(programs, list):
        return
    for i, program in enumerate(programs):
        nodes = program.get("nodes") if isinstance(program, dict) else None
        if not isinstance(nodes, list):
            continue
        for j, node in enumerate(nodes):
            if not isinstance(node, dict):
                continue
            send, hook = node.get("send"), node.get("webhook")
            templates = [(f"send.{k}", send.get(k)) for k in _MESSAGE_FIELDS] if isinstance(send, dict) else []
            if isinstance(hook, dict):
                templates.append(("webhook.body", hook.get("body")))
            for key, source in templates:
                if isinstance(source, str) and (err := check_template(source)):
                    yield Problem(f"programs[{i}].nodes[{j}].{key}", f"template error: {err}")
