"""Short forms for tests that change the app's settings (keys of ``SMS_NOTIFICATIONS``).

The app reads its settings from one dict, so changing one key means replacing the
dict with a copy holding the new value: these helpers write that copy, merged
with the dict in force at that moment (so a test's change adds to its fixtures').
"""

from typing import Any

from django.conf import settings
from django.test import override_settings

from notification.conf import DEFAULTS, NAMESPACE


def _merged(keys: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(keys) - set(DEFAULTS))
    assert not unknown, f"not settings of the app: {unknown}"
    return {**getattr(settings, NAMESPACE, {}), **keys}


class sms_settings(override_settings):
    """``override_settings`` where the app's keys go into ``SMS_NOTIFICATIONS``.

    ``sms_settings(GRAPHQL_MAX_DEPTH=2, DEBUG=False)``: ``GRAPHQL_MAX_DEPTH`` in the
    dict, ``DEBUG`` at the top level as usual. A decorator or a context manager;
    the dict is merged when entered, with the keys then in force.
    """

    def __init__(self, **options: Any) -> None:
        self.keys = {name: value for name, value in options.items() if name in DEFAULTS}
        self.others = {name: value for name, value in options.items() if name not in DEFAULTS}
        super().__init__(**self._options())

    def _options(self) -> dict[str, Any]:
        return {**self.others, NAMESPACE: _merged(self.keys)}

    def enable(self) -> None:
        self.options = self._options()
        super().enable()


def set_sms(settings_fixture: Any, **keys: Any) -> None:
    """pytest-django's ``settings`` fixture, for app keys: undone when the test ends."""
    setattr(settings_fixture, NAMESPACE, _merged(keys))


def unset_sms(settings_fixture: Any, *names: str) -> None:
    """Remove keys from the dict (the app's default applies), undone when the test ends."""
    current = dict(getattr(settings_fixture, NAMESPACE, {}))
    for name in names:
        current.pop(name, None)
    setattr(settings_fixture, NAMESPACE, current)
