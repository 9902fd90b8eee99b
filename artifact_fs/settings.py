"""MLflow's environment variables (and the provider ones it relies on), with MLflow's parsing.

Each variable is a :class:`Setting`: its name, default and parser in one place. ``get(environ)``
returns the default when the variable is unset and raises ``ValueError`` naming the variable and
the bad value when it cannot be parsed, exactly as MLflow's ``_EnvironmentVariable`` does
(booleans accept only true/false/1/0 in any case; an empty string is *set* and therefore invalid).
``is_set`` tests presence, which MLflow uses for client-side overrides.

Precedence everywhere: an explicit keyword argument wins over the environment, which wins over the
default (:func:`pick`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Environ = Mapping[str, str]

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


def _environ(environ: Environ | None) -> Environ:
    return os.environ if environ is None else environ


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One environment variable: name, default, parser and what it is for."""

    name: str
    default: T
    parser: Callable[[str], T]
    doc: str = ""

    def is_set(self, environ: Environ | None = None) -> bool:
        """Presence, not truthiness (``MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=false`` is set)."""
        return self.name in _environ(environ)

    def raw(self, environ: Environ | None = None) -> str | None:
        return _environ(environ).get(self.name)

    def get(self, environ: Environ | None = None) -> T:
        """The parsed value, or the default when unset; ``ValueError`` naming the variable if bad."""
        raw = self.raw(environ)
        if raw is None:
            return self.default
        try:
            return self.parser(raw)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"Invalid value {raw!r} for environment variable {self.name}: {exc}") from exc


def pick(explicit: T | None, setting: Setting[T], environ: Environ | None = None) -> T:
    """Explicit keyword argument, else the environment, else the default."""
    return explicit if explicit is not None else setting.get(environ)


# -- parsers -----------------------------------------------------------------------------------
def parse_bool(text: str) -> bool:
    """MLflow's boolean rule: only true/false/1/0, any case."""
    lowered = text.strip().lower() if text.strip() == text else text.lower()
    if lowered in {"true", "1"}:
        return True
    if lowered in {"false", "0"}:
        return False
    raise ValueError("expected one of true, false, 1, 0 (any case)")


def parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("expected an integer") from None


def parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError("expected a number") from None


def parse_str(text: str) -> str:
    return text


def parse_json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"expected a JSON object, got invalid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got a JSON {type(value).__name__}")
    return value


def parse_key_value_pairs(text: str) -> dict[str, str]:
    """MLflow's ``k=v,k2=v2`` form (``MLFLOW_PYARROW_EXTRA_CONF``); a pair without ``=`` is an error."""
    result: dict[str, str] = {}
    for pair in text.split(","):
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"the pair {pair!r} has no '=' (expected key=value,key2=value2)")
        result[key] = value
    return result


def parse_comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def in_range(parser: Callable[[str], int], low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = parser(text)
        if not low <= value <= high:
            raise ValueError(f"{what} must be between {low} and {high}, got {value}")
        return value

    return parse


def multiple_of(parser: Callable[[str], int], unit: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = parser(text)
        if value <= 0 or value % unit:
            raise ValueError(f"{what} must be a positive multiple of {unit} bytes, got {value}")
        return value

    return parse


def boolean(name: str, default: bool, doc: str = "") -> Setting[bool]:
    return Setting(name, default, parse_bool, doc)


def integer(name: str, default: Any, doc: str = "") -> Setting[Any]:
    return Setting(name, default, parse_int, doc)


def string(name: str, default: str | None = None, doc: str = "") -> Setting[str | None]:
    return Setting(name, default, parse_str, doc)
