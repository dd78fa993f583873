"""Typed readers for environment variables.

Settings fail at import with a message naming the variable, so a worker or a
server started with a malformed value stops at once instead of misbehaving later.
"""

import os
from collections.abc import Callable, Mapping

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    """Return the variable stripped of surrounding blanks, or ``default``."""
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return boolean(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}") from None


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def upper(raw: str) -> str:
    """A code written in any case ("us" is "US")."""
    return raw.upper()


def url_root(raw: str) -> str:
    """A base URL, without the trailing slash paths are appended after."""
    return raw.rstrip("/")


def boolean(raw: str) -> bool:
    """``true``/``yes``/``on``/``1`` or ``false``/``no``/``off``/``0``/blank, any case."""
    value = raw.lower()
    if value in _TRUE | _FALSE:
        return value in _TRUE
    raise ValueError("a boolean (true/false)")


#: Converters whose blank value means something ("" turns quiet hours off); a blank
#: number or boolean counts as unset, as ``env_int`` and ``env_float`` treat it.
_TEXT: set[Callable[[str], object]] = {str, upper, url_root}
_KINDS: dict[Callable[[str], object], str] = {int: "an integer", float: "a number"}


def env_values(
    converters: Mapping[str, Callable[[str], object]],
    out_of_range: Callable[[str, object], str | None] = lambda name, value: None,
) -> dict[str, object]:
    """The variables of ``converters`` that are set, each converted; unset ones are left out.

    For a dict setting whose defaults live in the app (``SMS_NOTIFICATIONS``): the
    project repeats no default, so changing one in the app changes it here too.
    A value that is not of its type, or that ``out_of_range`` refuses (the app's
    rule, ``notification.conf.out_of_range``, also its system check E004), stops the
    process here, naming the variable.
    """
    values: dict[str, object] = {}
    for name, convert in converters.items():
        raw = os.environ.get(name)
        if raw is None or (not raw.strip() and convert not in _TEXT):
            continue
        try:
            value = convert(raw.strip())
        except ValueError as exc:
            kind = _KINDS.get(convert, str(exc))
            raise ImproperlyConfigured(f"{name} must be {kind}, got {raw!r}") from None
        if (words := out_of_range(name, value)) is not None:
            raise ImproperlyConfigured(f"{name} must be {words}, got {raw!r}")
        values[name] = value
    return values
