"""The documentation site: its examples run, its links resolve and every page is in the nav."""

from __future__ import annotations

import linecache
import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MKDOCS_YML = ROOT / "mkdocs.yml"

# docs/scripts/ holds the Python scripts that regenerate result pages; mkdocs excludes it.
EXCLUDED_DIRS = ("scripts",)
NOT_EXECUTED = "<!-- not executed -->"

FENCE = re.compile(r"^```.*?^```[ \t]*$", flags=re.DOTALL | re.MULTILINE)
PYTHON_BLOCK = re.compile(
    r"(?P<before>[^\n]*\n(?:[ \t]*\n)*)```python\n(?P<code>.*?)^```", flags=re.DOTALL | re.MULTILINE
)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
NAV_PAGE = re.compile(r"^\s*-\s*(?:[^:\n]+:\s*)?([\w./-]+\.md)\s*$", flags=re.MULTILINE)


def doc_pages() -> list[Path]:
    """Every Markdown page of the site, scripts excluded."""
    return sorted(
        path for path in DOCS.rglob("*.md") if path.relative_to(DOCS).parts[0] not in EXCLUDED_DIRS
    )


def executed_pages() -> list[Path]:
    return [DOCS / "concepts.md", *sorted((DOCS / "maskers").glob("*.md"))]


def python_blocks(path: Path) -> list[tuple[str, bool]]:
    """``(code, executed)`` for every python block; a block is skipped when the last non-blank
    line before it is the ``<!-- not executed -->`` marker."""
    text = "\n" + path.read_text(encoding="utf-8")
    return [
        (match["code"], match["before"].strip() != NOT_EXECUTED)
        for match in PYTHON_BLOCK.finditer(text)
    ]


def block_cases() -> list[object]:
    cases = []
    for page in executed_pages():
        for index, (code, executed) in enumerate(python_blocks(page)):
            marks = () if executed else (pytest.mark.skip(reason=f"marked {NOT_EXECUTED}"),)
            name = f"{page.relative_to(DOCS)}#{index}"
            cases.append(pytest.param(name, code, id=name, marks=marks))
    return cases


def nav_pages() -> set[str]:
    text = MKDOCS_YML.read_text(encoding="utf-8")
    _, _, nav = text.partition("\nnav:\n")
    assert nav, "mkdocs.yml has no top-level nav"
    return set(NAV_PAGE.findall(nav))


def relative_targets(page: Path) -> list[str]:
    """Relative link and image targets of a page, outside code, without ``#anchor``."""
    text = INLINE_CODE.sub("", FENCE.sub("", page.read_text(encoding="utf-8")))
    targets = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


def test_the_pages_with_examples_exist_and_have_python_blocks() -> None:
    assert (DOCS / "concepts.md").is_file()
    for page in executed_pages():
        assert python_blocks(page), f"{page.relative_to(ROOT)} has no python example"


@pytest.mark.parametrize(("name", "code"), block_cases())
def test_python_block_runs(name: str, code: str) -> None:
    filename = f"docs/{name}"
    # Registered so that a failing assertion's traceback shows the block's own line.
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    torch.manual_seed(0)
    exec(compile(code, filename, "exec"), {"__name__": "docs_example"})  # noqa: S102


def test_block_extraction_honours_the_not_executed_marker(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# t\n\n```python\na = 1\n```\n\n<!-- not executed -->\n\n```python\nb = 2\n```\n"
        "\n```bash\nls\n```\n",
        encoding="utf-8",
    )
    assert python_blocks(page) == [("a = 1\n", True), ("b = 2\n", False)]


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_relative_links_and_images_point_at_files_inside_docs(page: Path) -> None:
    for target in relative_targets(page):
        if not target:
            continue
        resolved = (page.parent / target).resolve()
        assert resolved.is_relative_to(DOCS), (
            f"{page.relative_to(ROOT)} links to {target}, outside docs/ (mkdocs cannot serve it)"
        )
        assert resolved.exists(), f"{page.relative_to(ROOT)} links to missing {target}"


def test_link_scanner_sees_links_and_images_but_not_code(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "[a](a.md#x) ![b](img/b.png) [c](https://x.org) [d](#local)\n"
        "`[e](e.md)`\n```text\n[f](f.md)\n```\n",
        encoding="utf-8",
    )
    assert relative_targets(page) == ["a.md", "img/b.png"]


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    pages = {path.relative_to(DOCS).as_posix() for path in doc_pages()}
    listed = nav_pages()
    assert pages - listed == set(), "pages missing from mkdocs.yml's nav"
    assert listed - pages == set(), "nav entries without a page"


@pytest.mark.parametrize("page", sorted((DOCS / "maskers").glob("*.md")), ids=lambda p: p.name)
def test_masker_page_has_its_paper_picture_example_and_defaults(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert "**Paper" in text
    assert "arxiv.org/abs/" in text
    assert f"](../images/maskers/{page.stem}.png)" in text
    assert "## Example" in text
    assert "## Defaults" in text


# A reference that a user cannot follow: sections (§) of documents outside the package, bug ids
# of an external specification, or files the user does not have.
EXTERNAL_REFERENCE = re.compile(r"§|\bB\d+\b|peers\.md|ecosystem\.md|design contract")
HACM_DEFECT = re.compile(r"\bH(\d+)\b")


def package_texts() -> list[Path]:
    return sorted((ROOT / "skelmask").rglob("*.py")) + sorted((ROOT / "examples").rglob("*.py"))


@pytest.mark.parametrize("path", package_texts(), ids=lambda path: str(path.relative_to(ROOT)))
def test_code_cites_nothing_a_user_does_not_have(path: Path) -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if EXTERNAL_REFERENCE.search(line)
    ]
    assert not bad, "\n".join(bad)


def test_every_cited_hacm_defect_id_is_a_row_of_the_hacm_guide() -> None:
    table = (DOCS / "hacm.md").read_text(encoding="utf-8")
    defined = {int(match) for match in re.findall(r"^\| H(\d+) \|", table, flags=re.MULTILINE)}
    assert defined == set(range(1, len(defined) + 1)), "defect ids must be numbered H1..Hn"
    cited = {
        (path.relative_to(ROOT), int(match))
        for path in package_texts()
        for line in path.read_text(encoding="utf-8").splitlines()
        if "hacm.md" in line or "rows H" in line or "row H" in line
        for match in HACM_DEFECT.findall(line)
    }
    missing = sorted(f"{path}: H{number}" for path, number in cited if number not in defined)
    assert not missing, missing
