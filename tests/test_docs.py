"""The repository documents itself: no reference leaves it, and every link in the docs lands.

- No source or documentation file points outside the repository (a relative path to a
  ``shared`` folder beside it) or names a design file that the repository does not hold;
  inside ``docs/`` the pages name each other, so bare page names are allowed there.
- Every relative Markdown link of README.md and docs/*.md names a file that exists, and its
  ``#anchor``, if any, is a heading of that file (GitHub's slug rules).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_DIRS = {"data", "build", "dist", "node_modules", "__pycache__"}  # and every .folder
SOURCE_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".json", ".txt"}
OUTSIDE = re.compile(r"\.\./shared\b")
DESIGN_STEMS = ("calculations", "interfaces", "data")
DESIGN_FILES = re.compile(r"(?<![/\w])(" + "|".join(DESIGN_STEMS) + r")\.md\b")
PAGE_STEMS = ("methodology", "data", "api")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])


def repository_files() -> list[Path]:
    """Every source and documentation file of the tree, outside tool and data folders."""
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [
            name
            for name in subfolders
            if name not in SKIPPED_DIRS
            and not name.startswith(".")
            and not name.endswith(".egg-info")
        ]
        found += [Path(folder, name) for name in files if Path(name).suffix in SOURCE_SUFFIXES]
    return found


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but - and _ dropped, spaces -."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a Markdown page's headings (code blocks skipped)."""
    found, fenced = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            found.add(slug(line.lstrip("#")))
    return found


def test_slug_follows_github():
    assert slug(" Money-weighted return (XIRR and MWR)") == "money-weighted-return-xirr-and-mwr"
    assert slug(" Bad input: nothing lost") == "bad-input-nothing-lost"
    assert slug(" performance_metrics (group `performance`, partitioned)") == (
        "performance_metrics-group-performance-partitioned"
    )


def test_no_reference_leaves_the_repository():
    offending = []
    for path in repository_files():
        relative = path.relative_to(ROOT)
        in_docs = relative.parts[0] == "docs"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if OUTSIDE.search(line) or (not in_docs and DESIGN_FILES.search(line)):
                offending.append(f"{relative}:{number}: {line.strip()}")
    assert offending == []


def test_the_check_finds_what_it_looks_for():
    # the names are assembled here so that this file itself holds none of them
    assert OUTSIDE.search("see [x](.." + "/shared/spec/x)")
    for stem in DESIGN_STEMS:
        assert DESIGN_FILES.search(f'({stem}.md, "Outputs")')
        assert DESIGN_FILES.search(f"the names in {stem}.md")
        assert not DESIGN_FILES.search(f"docs/{stem}.md")
    assert not DESIGN_FILES.search("the metadata.md file")


def test_the_documentation_pages_exist():
    names = {page.name for page in PAGES}
    assert {f"{stem}.md" for stem in PAGE_STEMS} | {"README.md"} <= names
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for stem in PAGE_STEMS:
        assert f"]({stem}.md)" in index


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_lands(page: Path):
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        name, _, anchor = target.partition("#")
        linked = (page.parent / name).resolve() if name else page
        if not linked.exists():
            broken.append(f"{target}: no file {name}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    assert broken == []
