"""Build :class:`mailhub.config.Settings` from defaults, a TOML file, env vars and CLI flags.

Precedence, lowest first: the models' defaults, the TOML file (``--config`` or
``MAILHUB_CONFIG``), ``MAILHUB_*`` environment variables, command-line flags. Environment
names are the dotted key upper-cased with ``__`` between levels: ``MAILHUB_DATA_DIR`` is
``data_dir``, ``MAILHUB_IMAP__PORT`` is ``imap.port``; list values are JSON
(``["a","b"]``) or comma-separated.

Every failure becomes one :class:`ConfigError` whose text names the key, where it came from
and what is wrong; the CLI prints it and exits 78 (EX_CONFIG). An unknown key is an error,
with a suggestion when it looks like a typo, because a silently ignored setting is worse.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mailhub.config import Settings

ENV_PREFIX = "MAILHUB_"
ENV_CONFIG = "MAILHUB_CONFIG"
# Variables with the prefix that are not settings (read by the CLI or by tests).
ENV_NO_UVLOOP = "MAILHUB_NO_UVLOOP"  # "1": run on the stdlib event loop (debugging aid)
ENV_NOT_SETTINGS = frozenset({ENV_CONFIG, ENV_NO_UVLOOP})

EX_CONFIG = 78


class ConfigError(Exception):
    """A configuration problem; ``str()`` is the one line shown to the operator."""


def _section_model(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    field = model.model_fields.get(name)
    if field is None:
        return None
    ann = field.annotation
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    return None


def _is_collection(model: type[BaseModel], name: str) -> bool:
    field = model.model_fields.get(name)
    if field is None:
        return False
    origin = typing.get_origin(field.annotation)
    return origin in (list, dict) or field.annotation in (list, dict)


def _unknown(path: list[str], model: type[BaseModel], source: str) -> ConfigError:
    key = ".".join(path)
    hint = difflib.get_close_matches(path[-1], list(model.model_fields), n=1)
    more = f" (did you mean {'.'.join([*path[:-1], hint[0]])}?)" if hint else ""
    return ConfigError(f"{key}: unknown setting{more} [from {source}]")


def _set(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> None:
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value


def _record_sources(tree: Mapping[str, Any], prefix: str, source: str, out: dict[str, str]) -> None:
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        out[dotted] = source
        if isinstance(value, Mapping):
            _record_sources(value, dotted + ".", source, out)


def _check_keys(
    tree: Mapping[str, Any], model: type[BaseModel], path: list[str], source: str
) -> None:
    """Unknown keys are reported here, before pydantic, so the message can suggest a fix."""
    for key, value in tree.items():
        sub_path = [*path, str(key)]
        if key not in model.model_fields:
            raise _unknown(sub_path, model, source)
        sub = _section_model(model, key)
        if sub is not None:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{'.'.join(sub_path)}: must be a table [from {source}]")
            _check_keys(value, sub, sub_path, source)


def read_toml(path: Path) -> dict[str, Any]:
    """The file's contents; ConfigError (with the line) when missing or not valid TOML."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except PermissionError:
        raise ConfigError(f"config file {path} is not readable (permission denied)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path}: not UTF-8 text") from None


def env_settings(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings tree from ``MAILHUB_*`` variables, and each dotted key's variable name."""
    tree: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in ENV_NOT_SETTINGS:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        model: type[BaseModel] = Settings
        for i, part in enumerate(path):
            if part not in model.model_fields:
                raise _unknown(path[: i + 1], model, f"environment variable {name}")
            sub = _section_model(model, part)
            if i < len(path) - 1:
                if sub is None:
                    raise _unknown(path[: i + 2], model, f"environment variable {name}")
                model = sub
            elif sub is not None:
                raise ConfigError(
                    f"{'.'.join(path)}: is a section; set its keys "
                    f"({name}__KEY) [from environment variable {name}]"
                )
        raw = environ[name]
        value: Any = raw
        if _is_collection(model, path[-1]):
            if raw.strip().startswith(("[", "{")):
                try:
                    value = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise ConfigError(
                        f"{'.'.join(path)}: invalid JSON ({exc}) [from environment variable {name}]"
                    ) from None
            else:
                value = [item.strip() for item in raw.split(",") if item.strip()]
        _set(tree, path, value)
        sources[".".join(path)] = f"environment variable {name}"
    return tree, sources


def _describe(exc: ValidationError, sources: Mapping[str, str]) -> str:
    errors = exc.errors()
    err = errors[0]
    parts = [str(p) for p in err["loc"]]
    key = ".".join(parts) or "(settings)"
    source = "default"
    for n in range(len(parts), 0, -1):
        found = sources.get(".".join(parts[:n]))
        if found:
            source = found
            break
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown setting"
    elif "input" in err and not isinstance(err["input"], (dict, list)):
        msg = f"{msg} (got {err['input']!r})"
    more = (
        f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        if len(errors) > 1
        else ""
    )
    return f"{key}: {msg} [from {source}]{more}"


def _check_ports(settings: Settings) -> None:
    listeners = {
        "imap.port": settings.imap.port,
        "imap.tls_port": settings.imap.tls_port,
        "pop3.port": settings.pop3.port,
        "pop3.tls_port": settings.pop3.tls_port,
        "lmtp.port": settings.lmtp.port,
        "smtp.port": settings.smtp.port,
    }
    seen: dict[int, str] = {}
    for key, port in listeners.items():
        if port == 0:
            continue
        if port in seen:
            raise ConfigError(f"{key}: port {port} is also used by {seen[port]}")
        seen[port] = key


def load_settings(
    config_path: Path | str | None = None,
    data_dir: Path | str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The effective settings; raises :class:`ConfigError` with one clear line.

    ``overrides`` maps dotted keys (``"imap.port"``) to values given on the command line;
    ``None`` values are skipped so argparse defaults can be passed straight through.
    ``data_dir`` comes out absolute, so later ``chdir`` or a daemon fork cannot move it.
    """
    env = os.environ if environ is None else environ
    tree: dict[str, Any] = {}
    sources: dict[str, str] = {}

    path = config_path if config_path is not None else env.get(ENV_CONFIG) or None
    if path is not None:
        path = Path(path).expanduser()
        file_tree = read_toml(path)
        _check_keys(file_tree, Settings, [], f"config file {path}")
        _merge(tree, file_tree)
        _record_sources(file_tree, "", f"config file {path}", sources)

    env_tree, env_sources = env_settings(env)
    _merge(tree, env_tree)
    sources.update(env_sources)

    flat: dict[str, Any] = dict(overrides or {})
    if data_dir is not None:
        flat["data_dir"] = data_dir
    for dotted, value in flat.items():
        if value is None:
            continue
        keys = dotted.split(".")
        _check_keys(_nest(keys, value), Settings, [], "command line")
        _set(tree, keys, value)
        sources[dotted] = _flag_name(dotted)

    try:
        settings = Settings.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, sources)) from None
    _check_ports(settings)
    return settings.model_copy(
        update={"data_dir": Path(os.path.abspath(settings.data_dir.expanduser()))}
    )


def _nest(keys: list[str], value: Any) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    _set(tree, keys, value)
    return tree


# Dotted key -> the serve flag that sets it (for error messages and the CLI).
FLAG_FOR_KEY: dict[str, str] = {
    "data_dir": "--data-dir",
    "host": "--host",
    "imap.port": "--imap-port",
    "imap.tls_port": "--imaps-port",
    "pop3.port": "--pop3-port",
    "pop3.tls_port": "--pop3s-port",
    "lmtp.port": "--lmtp-port",
    "smtp.port": "--smtp-port",
}


def _flag_name(dotted: str) -> str:
    flag = FLAG_FOR_KEY.get(dotted)
    return f"command-line flag {flag}" if flag else "command line"


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--data-dir``, which every subcommand takes (the CLI contract)."""
    parser.add_argument(
        "--config",
        metavar="PATH",
        type=Path,
        help="TOML configuration file (default: $MAILHUB_CONFIG)",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        type=Path,
        help="data directory (default: $MAILHUB_DATA_DIR or ./mailhub-data)",
    )
