"""Settings of ``legnext``: from flags, then the environment, then a TOML config file.

The file is ``--config PATH``, else ``$LEGNEXT_CONFIG``, else
``$XDG_CONFIG_HOME/legnext/config.toml`` (``~/.config/legnext/config.toml``) if it exists.
It holds the settings below by name (``api_key = "..."``, ``base_url = "..."``,
``max_points = 20000``); an unknown name is refused, so a typo is not silently ignored.
The API key has no flag: a key on the command line is seen by every user of the machine
(``ps``) and kept in the shell's history.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from legnext_async._exceptions import ValidationError

__all__ = ["SETTINGS", "Config", "Setting", "config_path", "load_config"]


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(name, "must be a non-empty string")
    return value


def _count(value: object, name: str) -> int:
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValidationError(name, f"must be a whole number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(name, f"must be a whole number of at least 0, got {value!r}")
    return value


def _positive(value: object, name: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValidationError(name, f"must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(name, f"must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValidationError(name, f"must be a number above 0, got {value!r}")
    return float(value)


@attrs.frozen
class Setting:
    """One setting: its name (the flag ``--name`` and the file's key), its variable, its type."""

    name: str
    env: str
    read: Callable[[object, str], object]
    #: Whether ``--name`` exists (the key has none: see the module docstring).
    flag: bool = True
    help: str = ""


SETTINGS: Final = (
    Setting("api_key", "LEGNEXT_API_KEY", _text, flag=False),
    Setting("base_url", "LEGNEXT_BASE_URL", _text, help="the API's base URL"),
    Setting(
        "time_scale",
        "LEGNEXT_TIME_SCALE",
        _positive,
        help="real seconds per service second (an emulator's --time-scale)",
    ),
    Setting("store", "LEGNEXT_STORE", _text, help="a job store file (SQLite) recording every job"),
    Setting(
        "max_points",
        "LEGNEXT_MAX_POINTS",
        _count,
        help="refuse jobs that would take the points committed past this",
    ),
    Setting(
        "max_active_jobs",
        "LEGNEXT_MAX_ACTIVE_JOBS",
        _count,
        help="jobs running at once (default: learned from the service)",
    ),
    Setting(
        "requests_per_second",
        "LEGNEXT_REQUESTS_PER_SECOND",
        _positive,
        help="a cap on the rate of requests",
    ),
    Setting(
        "timeout", "LEGNEXT_TIMEOUT", _positive, help="seconds a wait may take (service clock)"
    ),
    Setting(
        "attempts",
        "LEGNEXT_ATTEMPTS",
        _count,
        help="tries of a failed status read, the first included (default 6; 1 fails fast)",
    ),
)
_BY_NAME: Final = {setting.name: setting for setting in SETTINGS}


@attrs.frozen
class Config:
    """The settings in force, and where each came from (``flag``, ``environment``, a path)."""

    values: Mapping[str, Any] = attrs.field(factory=dict)
    sources: Mapping[str, str] = attrs.field(factory=dict)
    #: The config file read, if any.
    path: Path | None = None

    def get(self, name: str) -> Any:
        """The value of setting ``name``, or ``None`` when nothing set it."""
        return self.values.get(name)

    def __repr__(self) -> str:
        # The key's value is never shown, only where it came from.
        shown = {
            name: ("***" if name == "api_key" else value) for name, value in self.values.items()
        }
        return f"Config({shown!r}, path={self.path})"

    def describe(self) -> list[str]:
        """One line per setting in force: its value (the key's never) and its source."""
        lines = []
        for setting in SETTINGS:
            if setting.name not in self.values:
                continue
            value = "(set)" if setting.name == "api_key" else self.values[setting.name]
            lines.append(f"{setting.name} = {value} (from {self.sources[setting.name]})")
        return lines


def config_path(given: str | None, environ: Mapping[str, str]) -> tuple[Path | None, bool]:
    """The config file to read, and whether it was asked for (then it must exist)."""
    if given:
        return Path(given), True
    if environ.get("LEGNEXT_CONFIG"):
        return Path(environ["LEGNEXT_CONFIG"]), True
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    path = Path(base) / "legnext" / "config.toml"
    return (path, False) if path.is_file() else (None, False)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise ValidationError("config", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError("config", f"{path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(_BY_NAME))
    if unknown:
        known = ", ".join(_BY_NAME)
        raise ValidationError("config", f"{path}: unknown setting {unknown[0]!r} (known: {known})")
    return data


def load_config(
    flags: Mapping[str, object], environ: Mapping[str, str], config: str | None = None
) -> Config:
    """The settings: each from its flag if given, else its variable if set, else the file.

    Raises:
        ValidationError: a value is malformed (named with where it came from), or the
            config file asked for is missing or invalid.
    """
    path, required = config_path(config, environ)
    from_file: dict[str, Any] = {}
    if path is not None:
        if required and not path.is_file():
            raise ValidationError("config", f"no config file at {path}")
        from_file = _read_file(path)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        given: object = flags.get(setting.name) if setting.flag else None
        if given is not None:
            source, label = "flag", f"--{setting.name.replace('_', '-')}"
        elif environ.get(setting.env, "").strip():
            given, source, label = environ[setting.env], "environment", setting.env
        elif setting.name in from_file:
            given, source, label = from_file[setting.name], str(path), f"{setting.name} in {path}"
        else:
            continue
        values[setting.name] = setting.read(given, label)
        sources[setting.name] = source
    return Config(values, sources, path)
