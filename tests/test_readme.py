"""The README's examples run: its Python block on the bundled sample, and every command and option it names exists."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import click
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_python_example_runs_on_the_bundled_sample(tmp_path, monkeypatch):
    import postfocus
    from postfocus.cli.demo import sample_frames

    blocks = python_blocks(README.read_text())
    assert len(blocks) == 1
    photos = tmp_path / "photos"
    photos.mkdir()
    for frame in sample_frames():
        shutil.copy(frame, photos / frame.name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("POSTFOCUS_CACHE", str(tmp_path / "cache"))
    scope: dict = {}
    exec(compile(blocks[0], str(README), "exec"), scope)  # noqa: S102 - the README's own example
    assert isinstance(scope["result"], postfocus.StackResult)
    assert isinstance(scope["ps"], postfocus.ProcessedStack)
    h, w = scope["ps"].size
    assert scope["image"].shape == (h, w, 3) and w > h  # the ring is landscape: (height, width)
    assert (tmp_path / "all_in_focus.jpg").exists() and (tmp_path / "all_in_focus.tif").exists()
    assert [p.name for p in scope["files"]] == [f"step{k}.tif" for k in range(6)]
    assert (tmp_path / "cache").is_dir()


def _commands() -> dict[str, click.Command]:
    from postfocus.cli import main

    return dict(main.commands)


def _flags(command: click.Command) -> set[str]:
    return {o for p in command.params for o in [*getattr(p, "opts", []), *getattr(p, "secondary_opts", [])]}


def _code(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _long_flags(cell: str) -> set[str]:
    return {f for code in _code(cell) for f in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", code)}


def readme_claims() -> list[tuple[str, str, str]]:
    """(where, command, flag or "") for every command and option the README names."""
    commands = _commands()
    claims: list[tuple[str, str, str]] = []
    heading: str | None = None
    for n, line in enumerate(README.read_text().splitlines(), 1):
        where = f"README.md:{n}"
        m = re.match(r"#+ `postfocus (\w+)", line)
        if line.startswith("#"):
            heading = m.group(1) if m else None
        for code in _code(line):  # `postfocus stack INPUT... --range A:B`
            words = code.split()
            if len(words) >= 2 and words[0] == "postfocus" and not words[1].startswith("-"):
                claims.append((where, words[1], ""))
                claims.extend((where, words[1], f) for f in _long_flags(f"`{code}`"))
        if not line.startswith("|") or set(line) <= {"|", "-", " "}:
            continue
        cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
        named = [c for c in _code(cells[0]) if c in commands]
        if named and len(cells) > 1:
            claims.extend((where, c, f) for c in named for f in _long_flags(cells[1]))
        elif heading:
            claims.extend((where, heading, f) for f in _long_flags(cells[0]))
    return claims


def test_every_command_and_option_in_the_readme_exists():
    commands = _commands()
    claims = readme_claims()
    assert len(claims) > 80  # the parser sees the tables
    wrong = [f"{where}: postfocus {cmd} {flag}".strip() for where, cmd, flag in claims
             if cmd not in commands or (flag and flag not in _flags(commands[cmd]))]
    assert wrong == []


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_command_is_in_the_readme(command):
    assert f"`postfocus {command}" in README.read_text()
