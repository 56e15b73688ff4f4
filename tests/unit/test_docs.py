"""The README stays a front door, gives CI's test command, and every link in the docs lands.

The README holds what the project is, the two commands and where to go next;
the rest lives in `docs/` per reader. Links between the pages are relative,
with GitHub's heading anchors, so a renamed heading or a moved page breaks
them silently: this reads every relative link and its anchor.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def prose_lines(path: Path) -> list[str]:
    """Return the lines of a Markdown file outside code fences."""
    lines, fenced = [], False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchor(heading: str) -> str:
    """Return GitHub's anchor of a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Return the anchors of every heading of a Markdown file."""
    return {anchor(line.lstrip("#")) for line in prose_lines(path) if line.startswith("#")}


def test_the_readme_is_a_front_door_of_at_most_200_lines() -> None:
    assert len(README.read_text().splitlines()) <= 200


def test_the_readme_gives_the_command_ci_runs_and_the_local_run() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"^exec (\S+)$", ci, re.MULTILINE)
    assert command is not None and command.group(1) == "scripts/test.sh"
    readme = README.read_text()
    assert f"| `{command.group(1)}` |" in readme
    assert "| `scripts/run-local.sh` |" in readme


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_and_anchor_lands(page: Path) -> None:
    broken = []
    for line in prose_lines(page):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            path_part, _, fragment = target.partition("#")
            destination = (page.parent / path_part).resolve() if path_part else page
            if not destination.is_relative_to(ROOT):
                continue  # beside the repository (../shared/DESIGN.md)
            if not destination.exists():
                broken.append(f"{target}: no such file")
            elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
                broken.append(f"{target}: no such heading")
    assert broken == []
