"""Defaults from a config file: ``$XDG_CONFIG_HOME/postfocus/config.toml`` (else ``~/.config/postfocus/config.toml``).

Read once when the command line starts and handed to click as its
``default_map``: a value there replaces an option's default, and the command
line (or the option's environment variable, e.g. ``$POSTFOCUS_CACHE``) still
wins. Keys are the long option names without dashes; top-level keys apply to
every command that has the option, a ``[command]`` table to that command only::

    quality = 92                  # stack, refocus, pop, aperture, view, batch
    cache = "~/stacks/cache"      # --cache of every command that has it

    [stack]
    method = "pyramid"
    refine-flow = true

A key no command knows, or a value its option refuses, stops the command with
one line naming the file and the key.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import click

from postfocus.errors import PostfocusError

__all__ = ["ConfigError", "config_path", "default_map"]

# Options that name what one run writes, or ask for help: not defaults a file should set.
_NOT_CONFIGURABLE = {"--output", "--help", "--version"}


class ConfigError(PostfocusError):
    """The config file cannot be read, or a key or value in it cannot be used."""


def config_path() -> Path:
    """``$XDG_CONFIG_HOME/postfocus/config.toml``, else ``~/.config/postfocus/config.toml``."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "postfocus" / "config.toml"


def _options(command: click.Command) -> dict[str, click.Option]:
    """Config key (long flag without dashes, also with underscores) -> option of ``command``."""
    found: dict[str, click.Option] = {}
    for param in command.params:
        if not isinstance(param, click.Option) or not param.expose_value or _NOT_CONFIGURABLE & set(param.opts):
            continue
        for flag in param.opts:
            if flag.startswith("--"):
                found[flag[2:]] = param
                found[flag[2:].replace("-", "_")] = param
    return found


def _value(path: Path, where: str, key: str, option: click.Option, value: Any) -> Any:
    """``value`` checked by the option's own type; a path has ``~`` expanded."""
    shown = f"{path}: {where}{key} = {value!r}"
    if option.is_flag and not isinstance(value, bool):
        raise ConfigError(f"{shown}: expected true or false")
    if isinstance(value, (dict, list)):
        raise ConfigError(f"{shown}: expected a single value")
    if isinstance(option.type, click.Path) and isinstance(value, str):
        value = os.path.expanduser(value)
    try:
        option.type.convert(value, option, None)
    except click.BadParameter as exc:
        raise ConfigError(f"{shown}: {exc.format_message()}") from None
    except (TypeError, ValueError, OverflowError):  # a number for a path, inf for a whole number, a NUL in a path:
        kind = "a path" if isinstance(option.type, click.Path) else option.type.name  # were tracebacks
        raise ConfigError(f"{shown}: not a value --{key.replace('_', '-')} takes ({kind})") from None
    return value


def default_map(group: click.Group, path: Path | None = None) -> dict[str, Any] | None:
    """The click ``default_map`` of the config file (None when there is none).

    Parameters
    ----------
    group : click.Group
        The root command; its commands' options say which keys are known.
    path : pathlib.Path, optional
        The file (default :func:`config_path`).

    Raises
    ------
    ConfigError
        In one line naming the file and the key.
    """
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:  # thousands of nested brackets: was a traceback
        raise ConfigError(f"{path}: not valid TOML (it nests too deep)") from None
    commands = dict(group.commands)
    root = _options(group)
    per_command = {name: _options(command) for name, command in commands.items()}
    result: dict[str, Any] = {}
    # Top-level keys first, then the [command] tables: a table wins, whatever the order in the file.
    for key, value in data.items():
        if key in commands:
            continue
        holders = [name for name, options in per_command.items() if key in options]
        if key not in root and not holders:
            raise ConfigError(f"{path}: {key}: no command has an option --{key.replace('_', '-')}")
        if key in root:
            result[root[key].name] = _value(path, "", key, root[key], value)
        for name in holders:
            option = per_command[name][key]
            result.setdefault(name, {})[option.name] = _value(path, "", key, option, value)
    for key, value in data.items():
        if key not in commands:
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {key} = {value!r}: [{key}] must be a table of its options")
        for sub, sub_value in value.items():
            option = per_command[key].get(sub)
            if option is None:
                raise ConfigError(f"{path}: [{key}] {sub}: 'postfocus {key}' has no option --{sub}")
            result.setdefault(key, {})[option.name] = _value(path, f"[{key}] ", sub, option, sub_value)
    return result
