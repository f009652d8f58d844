"""The YAML examples of the Loyalty section of docs/definitions.md compile.

Every ```yaml block between the "## Loyalty" heading and the next level-2 heading
is one of two things:

- a complete definitions document with a top-level ``loyalty:`` key: it is read
  as ``cairn apply`` reads a file (``cairn.definitions.parse``: YAML 1.2, template
  checks, msgpack for the core), and the msgpack document is compiled with
  ``cairn._core.Catalog.compile(packed, 1)``;
- a part of a document, marked by the first line ``# fragment``: skipped, on
  purpose and visibly (reported as skipped).

A block that is neither fails and says how to fix it, so an example cannot drift
away from what the core accepts without a test saying so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cairn import _core
from cairn.definitions import DefinitionsInvalid, load_yaml, parse

DOC = Path(__file__).resolve().parent.parent / "docs" / "definitions.md"
SECTION = "## Loyalty"
FRAGMENT = "# fragment"
# The section holds far more complete examples than this (the seed examples of L
# alone are nine); fewer means the extraction broke or examples went missing.
MIN_DOCUMENTS = 20
HEAD_LINES = 8

_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})\s*(?P<info>[^\s`]*)")


@dataclass(frozen=True)
class Block:
    """One fenced YAML block: the 1-based line of its first YAML line in the file,
    and its text."""

    line: int
    text: str

    @property
    def fragment(self) -> bool:
        first = next((line.strip() for line in self.text.splitlines() if line.strip()), "")
        return first.startswith(FRAGMENT)

    def head(self) -> str:
        lines = self.text.splitlines()
        shown = "\n".join(f"    {line}" for line in lines[:HEAD_LINES])
        return shown + ("\n    ..." if len(lines) > HEAD_LINES else "")


@dataclass(frozen=True)
class Section:
    found: bool
    blocks: list[Block]
    unterminated: list[int]


def loyalty_blocks(markdown: str) -> Section:
    """The ```yaml blocks of the "## Loyalty" section of ``markdown``."""
    lines = markdown.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == SECTION), None)
    if start is None:
        return Section(False, [], [])
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    blocks: list[Block] = []
    unterminated: list[int] = []
    i = start + 1
    while i < end:
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence = opening.group("fence")
        # A closing fence: the same character, at least as long, nothing after it.
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        j = i + 1
        while j < len(lines) and not closing.match(lines[j]):
            j += 1
        if j == len(lines):
            unterminated.append(i + 1)
        if opening.group("info").lower() == "yaml":
            blocks.append(Block(line=i + 2, text="\n".join(lines[i + 1:j]) + "\n"))
        i = j + 1
    return Section(True, blocks, unterminated)


SECTION_BLOCKS = loyalty_blocks(DOC.read_text(encoding="utf-8"))


def _where(block: Block) -> str:
    return f"docs/definitions.md line {block.line}"


def _complete(block: Block) -> dict[str, Any]:
    """The block read as a document with a top-level ``loyalty:`` key, or a failure
    saying what is wrong with it."""
    problem = None
    try:
        doc = load_yaml(block.text)
    except Exception as exc:  # noqa: BLE001 - any reader error is the block's problem
        problem = str(exc)
    if problem is not None:  # failing outside the except: the error is shown once
        pytest.fail(f"{_where(block)}: not valid YAML:\n{block.head()}\n{problem}", pytrace=False)
    if not isinstance(doc, dict) or "loyalty" not in doc:
        pytest.fail(
            f"{_where(block)}: this yaml block has no top-level 'loyalty:' key. Make it a complete "
            f"document, or mark it as a part of one with the first line '{FRAGMENT}':\n{block.head()}",
            pytrace=False,
        )
    return doc


def _ids(blocks: list[Block]) -> Iterator[str]:
    for b in blocks:
        yield f"line-{b.line}" + ("-fragment" if b.fragment else "")


def test_the_section_holds_its_examples() -> None:
    assert SECTION_BLOCKS.found, f"no '{SECTION}' heading in {DOC}"
    assert not SECTION_BLOCKS.unterminated, f"unterminated code fences at lines {SECTION_BLOCKS.unterminated}"
    complete = [b for b in SECTION_BLOCKS.blocks if not b.fragment]
    assert len(complete) >= MIN_DOCUMENTS, (
        f"only {len(complete)} complete yaml examples in the Loyalty section of {DOC} "
        f"(expected at least {MIN_DOCUMENTS})"
    )


@pytest.mark.parametrize("block", SECTION_BLOCKS.blocks, ids=list(_ids(SECTION_BLOCKS.blocks)))
def test_example_compiles(block: Block) -> None:
    if block.fragment:
        pytest.skip(f"{_where(block)} is marked '{FRAGMENT}'")
    doc = _complete(block)
    packed, catalog, problem = b"", None, None
    try:
        # As `cairn apply` reads a file: YAML 1.2, template checks, msgpack for the core.
        packed, _ = parse(block.text, f"definitions.md:{block.line}")
        catalog = _core.Catalog.compile(packed, 1)
    except (DefinitionsInvalid, _core.DefinitionError) as exc:
        problem = str(exc)
    if problem is not None or catalog is None:  # failing outside the except: the error is shown once
        pytest.fail(f"{_where(block)}: this example does not compile:\n{block.head()}\n{problem}", pytrace=False)
    # What compiled is the example's loyalty programs, rule for rule.
    written = [(p["name"], [r["name"] for r in p["rules"]]) for p in doc["loyalty"]]
    compiled = [(p["name"], list(p["rules"])) for p in catalog.summary()["loyalty"]]
    assert compiled == written, f"{_where(block)}: compiled {compiled}, written {written}"


def test_extraction() -> None:
    """The reader of the section itself: only yaml blocks of the Loyalty section,
    with their line numbers, fragments recognised, other languages ignored."""
    markdown = "\n".join([
        "# Title",                    # 1
        "```yaml",                    # 2
        "before: section",            # 3
        "```",                        # 4
        "## Loyalty",                 # 5
        "",                           # 6
        "```yaml",                    # 7
        "loyalty: []",                # 8
        "```",                        # 9
        "```json",                    # 10
        '{"type": "purchase"}',       # 11
        "```",                        # 12
        "````yaml",                   # 13
        "# fragment",                 # 14
        "```",                        # 15: inside the longer fence
        "rules: []",                  # 16
        "````",                       # 17
        "### Sub-section",            # 18
        "```yaml",                    # 19
        "loyalty: [{name: x}]",       # 20
        "```",                        # 21
        "## Next",                    # 22
        "```yaml",                    # 23
        "after: section",             # 24
        "```",                        # 25
    ])
    section = loyalty_blocks(markdown)
    assert section.found and not section.unterminated
    assert [(b.line, b.fragment) for b in section.blocks] == [(8, False), (14, True), (20, False)]
    assert section.blocks[0].text == "loyalty: []\n"
    assert section.blocks[1].text == "# fragment\n```\nrules: []\n"
    assert not loyalty_blocks("# nothing here\n").found
    assert loyalty_blocks("## Loyalty\n```yaml\nloyalty: []\n").unterminated == [2]
