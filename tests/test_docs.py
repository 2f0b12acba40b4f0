"""The documentation tells the truth about the code: files it names exist, commands it shows parse."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _layout_block() -> str:
    section = README[README.index("## Layout"):]
    return section[section.index("```") + 3:section.index("```", section.index("```") + 3)]


# References that other work in flight resolves (the lead merges it): listed, so that any *new*
# dangling reference fails; remove an entry once it resolves.
PENDING_DOCS: set[str] = set()
PENDING_ARCHITECTURE: set[str] = set()


def test_docs_named_in_the_code_exist():
    missing = set()
    for py in sorted((ROOT / "srredsim").rglob("*.py")):
        for ref in re.findall(r"docs/([A-Za-z0-9_.-]+\.md)", py.read_text()):
            if not (ROOT / "docs" / ref).is_file():
                missing.add(f"{py.relative_to(ROOT).as_posix()}: docs/{ref}")
    assert missing <= PENDING_DOCS, sorted(missing - PENDING_DOCS)


def test_no_reference_to_an_architecture_file_outside_docs():
    """Docstrings cite docs/architecture.md (in the repository), not a design file the repository lacks."""
    citing = {py.relative_to(ROOT).as_posix() for py in (ROOT / "srredsim").rglob("*.py")
              if "ARCHITECTURE §" in py.read_text() or "ARCHITECTURE section" in py.read_text()}
    assert citing <= PENDING_ARCHITECTURE, sorted(citing - PENDING_ARCHITECTURE)


def test_readme_layout_names_only_what_exists():
    """Every module (``*.py``) and folder (``name/``) the README's layout section names exists."""
    block = _layout_block()
    tracked = [p for p in ROOT.rglob("*") if not {".git", ".venv", "build"} & set(p.relative_to(ROOT).parts)]
    files = {p.name for p in tracked if p.suffix == ".py"}
    dirs = {p.relative_to(ROOT).as_posix() for p in tracked if p.is_dir()}
    missing = [t for t in re.findall(r"[\w./]+\.py\b", block) if t.split("/")[-1] not in files]
    for t in re.findall(r"(?<![\w/.])(\.?[a-z_][a-z0-9_]*(?:/[a-z0-9_]+)*)/(?=[\s,)]|$)", block, re.M):
        if not any(d == t or d.endswith("/" + t) for d in dirs):
            missing.append(t + "/")
    assert not missing, missing


def test_readme_layout_lists_every_module_of_the_package():
    block = _layout_block()
    names = {p.name for p in (ROOT / "srredsim").glob("*.py") if p.name not in ("__init__.py", "__main__.py",
                                                                               "_keras_compat.py")}
    names |= {p.name + "/" for p in (ROOT / "srredsim").iterdir() if p.is_dir() and p.name != "__pycache__"}
    absent = sorted(n for n in names if n not in block)
    assert not absent, f"README layout section lacks {absent}"


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    from srredsim.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _readme_commands() -> list[list[str]]:
    """`srredsim ...` command lines in README code blocks and the command table."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("srredsim "):
                found.append(shlex.split(line))
    for cell in re.findall(r"^\| `(srredsim [^`]+)` \|", README, re.M):
        found.append(cell.replace("\\|", "|").split())
    return found


@pytest.mark.parametrize("argv", _readme_commands(), ids=lambda a: " ".join(a)[:60])
def test_readme_commands_use_flags_the_command_has(argv):
    subs = _subparsers()
    assert argv[1] in subs, argv
    flags = {s for a in subs[argv[1]]._actions if a.help is not argparse.SUPPRESS for s in a.option_strings}
    used = [t for t in argv[2:] if t.startswith("-")]
    unknown = [t for t in used if t.split("=")[0] not in flags]
    assert not unknown, f"{' '.join(argv)}: {unknown} are not (visible) options of srredsim {argv[1]}"
