"""The docs stay true to the code: commands, settings and links they mention exist.

`tests/test_config.py` already checks that every setting is in docs/configuration.md and that
its tables name no unknown key; this module extends that to every page: a dotted key or a
``MAILHUB_*`` variable mentioned anywhere must exist. It also checks that every ``mailhub ...``
command line shown (in code blocks and inline code) parses with the real argparse parser of
``mailhub.cli`` (subcommand, action and every option), and that every relative link points to a
file (and, for a Markdown target with a ``#fragment``, to a heading that exists).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from mailhub.cli import build_parser
from mailhub.config import Settings

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", ROOT / "deploy" / "README.md", *(ROOT / "docs").rglob("*.md")])
PAGE_IDS = [str(p.relative_to(ROOT)) for p in PAGES]

# Where a code line's command ends, and words before "mailhub" that mean it is a command.
_STOP = {"|", "||", "&&", ";", "<", ">", "2>&1", "\\"}
_LEADERS = {"$", "&&", "||", "|", ";", "sudo", "exec", "-m", "mailhub", "then", "do", "time"}
# Variables that are not settings: the config path, a debugging switch, the image test's knobs.
_NOT_SETTINGS = {"CONFIG", "NO_UVLOOP", "TEST_IMAGE", "TEST_POSTFIX", "REBUILD_BASE"}
_SHELL_FENCES = {"", "sh", "shell", "bash", "console", "text"}
# Code names that look like settings (the ingest module ``delivery``'s reply table).
_CODE_NAMES = {"delivery.reply_for"}
_FILE_SUFFIXES = {
    "md",
    "py",
    "toml",
    "json",
    "sqlite",
    "service",
    "yml",
    "pem",
    "conf",
    "local",
    "cf",
    "sh",
    "html",
    "txt",
}


def test_pages_found() -> None:
    names = {p.name for p in PAGES}
    for page in (
        "getting-started.md",
        "deployment.md",
        "migration-from-dovecot.md",
        "backup-and-restore.md",
        "imap-vs-pop3.md",
        "rfc-compliance.md",
        "architecture.md",
        "benchmarks.md",
        "configuration.md",
    ):
        assert page in names


# -- code in Markdown ----------------------------------------------------------------------------


def code_lines(text: str) -> Iterator[str]:
    """Lines of shell-like fenced code blocks, and inline code spans of the prose.

    Fences labelled with another language (``conf``, ``toml``, ``ini``) hold files, not command
    lines: Postfix's master.cf, for one, starts a line with a service named ``mailhub``.
    """
    fenced = False
    shell = True
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            shell = line.strip().strip("`") in _SHELL_FENCES
            continue
        if fenced:
            if shell:
                yield line
        else:
            yield from re.findall(r"`([^`\n]+)`", line)


def mailhub_commands(line: str) -> Iterator[list[str]]:
    """Each ``mailhub ...`` invocation in a code line, as its words after ``mailhub``."""
    line = re.split(r"\s#\s?|^#", line, maxsplit=1)[0]
    tokens = line.split()
    for i, tok in enumerate(tokens):
        invoked = tok.endswith("bin/mailhub") or (
            tok == "mailhub" and (i == 0 or tokens[i - 1] in _LEADERS)
        )
        if not invoked or i + 1 >= len(tokens) or tokens[i + 1] == "mailhub":
            continue
        words = []
        for word in tokens[i + 1 :]:
            if word in _STOP or word.startswith(("<", ">", "#")):
                break
            words.append(word)
        yield words


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def check_command(words: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """Problems with one command line (empty when subcommand and options all exist)."""
    problems: list[str] = []
    rest = words
    current = parser
    # Placeholders ("mailhub user ...", "mailhub COMMAND") stand for any subcommand.
    while rest and not rest[0].startswith("-") and rest[0] != "..." and not rest[0].isupper():
        subs = _subparsers(current)
        if not subs:
            break
        names = rest[0].strip("[]`").split("|")
        unknown = [n for n in names if n not in subs]
        if unknown:
            return [f"no command {' '.join(unknown)!r} (have: {', '.join(sorted(subs))})"]
        current = subs[names[0]]
        rest = rest[1:]
    options = current._option_string_actions
    for word in rest:
        for option in word.strip("[]()`,").split("|"):
            option = option.split("=")[0].strip("[]()`,")
            if option.endswith("*"):  # "--quota-*": some option with that prefix
                if not any(o.startswith(option[:-1]) for o in options):
                    problems.append(f"no option matches {option!r}")
                continue
            if option.startswith("-") and option not in ("-", "--") and option not in options:
                problems.append(f"unknown option {option!r}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_mailhub_commands_exist(page: Path) -> None:
    parser = build_parser()
    bad = []
    for line in code_lines(page.read_text("utf-8")):
        for words in mailhub_commands(line):
            bad += [f"`mailhub {' '.join(words)}`: {p}" for p in check_command(words, parser)]
    assert not bad, "\n".join(bad)


def test_every_documented_command_is_found() -> None:
    """The extractor sees the commands the pages show (else the check above checks nothing)."""
    seen: set[str] = set()
    for page in PAGES:
        for line in code_lines(page.read_text("utf-8")):
            for words in mailhub_commands(line):
                if words and not words[0].startswith("-"):
                    seen.add(words[0].strip("[]`"))
    missing = set(_subparsers(build_parser())) - seen
    assert not missing, f"commands no page shows: {sorted(missing)}"


def test_the_checker_catches_mistakes() -> None:
    parser = build_parser()
    assert check_command(["user", "set", "me@x", "--pop3-on-delete", "keep"], parser) == []
    assert check_command(["user", "add|passwd|del|list|set"], parser) == []
    assert check_command(["deliver", "[--folder", "NAME]", "[-f", "SENDER]", "RCPT"], parser) == []
    assert check_command(["user", "set", "x", "--quota-*"], parser) == []
    assert check_command(["user", "set", "x", "--quto-*"], parser)
    assert check_command(["usr", "add", "x"], parser)
    assert check_command(["user", "rename", "x"], parser)
    assert check_command(["serve", "--imap-prot", "1"], parser) == ["unknown option '--imap-prot'"]
    assert list(mailhub_commands("podman exec -it mailhub mailhub user add me@x")) == [
        ["user", "add", "me@x"]
    ]
    assert list(mailhub_commands("podman run --name mailhub --sysctl x")) == []
    assert list(mailhub_commands("printf 'x' | .venv/bin/mailhub deliver me  # note")) == [
        ["deliver", "me"]
    ]


# -- settings ------------------------------------------------------------------------------------


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out |= _keys(ann, f"{prefix}{name}.")
        else:
            out.add(f"{prefix}{name}")
    return out


KEYS = _keys(Settings)
SECTIONS = {k.split(".")[0] for k in KEYS if "." in k}


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_settings_mentioned_exist(page: Path) -> None:
    text = page.read_text("utf-8")
    stale = [
        f"{section}.{key}"
        for section, key in re.findall(r"`([a-z0-9_]+)\.([a-z0-9_]+)", text)
        if section in SECTIONS
        and key not in _FILE_SUFFIXES
        and f"{section}.{key}" not in KEYS | _CODE_NAMES
    ]
    for var in re.findall(r"\bMAILHUB_([A-Z0-9_]+)", text):
        if var in _NOT_SETTINGS:
            continue
        key = ".".join(part.lower() for part in var.split("__"))
        if key not in KEYS:
            stale.append(f"MAILHUB_{var}")
    assert not stale, f"{page.name} mentions settings that do not exist: {sorted(set(stale))}"


# -- links ---------------------------------------------------------------------------------------


def _anchors(page: Path) -> set[str]:
    """GitHub-style heading anchors of a Markdown file."""
    out = set()
    for line in page.read_text("utf-8").splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(slug)
    return out


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_relative_links_resolve(page: Path) -> None:
    text = "\n".join(
        line
        for line in page.read_text("utf-8").split("```")[::2]  # outside code blocks
    )
    bad = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path, _, fragment = target.partition("#")
        resolved = (page.parent / path).resolve()
        if not resolved.exists():
            bad.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in _anchors(resolved):
            bad.append(f"{target}: no heading #{fragment}")
    assert not bad, f"{page.relative_to(ROOT)}: " + "; ".join(bad)
