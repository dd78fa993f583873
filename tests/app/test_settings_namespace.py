"""The app's one setting, ``SMS_NOTIFICATIONS`` (``notification/conf.py``): typed keys,
defaults in one place, a cache that follows ``override_settings``, the deprecated
top-level names, and the environment mapped onto the dict (``config/env.py``)."""

import typing
import warnings

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from config.env import boolean, env_values, upper, url_root
from notification import conf
from notification.conf import DEFAULTS, Resolved, SmsNotificationsSettings, app_settings
from notification.exceptions import SmsNotificationError, SmsNotificationsDeprecationWarning


def messages(id_prefix: str) -> list:
    return [m for m in run_checks() if (m.id or "").startswith(id_prefix)]


@pytest.fixture
def fresh_warnings(monkeypatch):
    """A process that has not warned yet (the warning is once per name per process)."""
    monkeypatch.setattr(conf, "_warned", set())


def test_the_typed_description_and_the_defaults_have_the_same_keys_and_types():
    described = typing.get_type_hints(SmsNotificationsSettings)
    resolved = typing.get_type_hints(Resolved)
    assert described == resolved
    assert set(DEFAULTS) == set(described) and len(DEFAULTS) >= 60
    assert not SmsNotificationsSettings.__required_keys__  # every key is optional


def test_a_key_of_the_dict_is_used_and_the_others_keep_their_defaults():
    with override_settings(SMS_NOTIFICATIONS={"TWILIO_SMS_RATE": 5.0}):
        assert app_settings.TWILIO_SMS_RATE == 5.0
        assert DEFAULTS["TWILIO_SMS_BATCH_SIZE"] == app_settings.TWILIO_SMS_BATCH_SIZE
        assert app_settings.GRAPHIQL is None  # None: follow DEBUG


def test_the_cache_follows_override_settings_in_and_out():
    with override_settings(SMS_NOTIFICATIONS={"GRAPHQL_MAX_DEPTH": 3}):
        assert app_settings.GRAPHQL_MAX_DEPTH == 3
        with override_settings(SMS_NOTIFICATIONS={"GRAPHQL_MAX_DEPTH": 4}):
            assert app_settings.GRAPHQL_MAX_DEPTH == 4
        assert app_settings.GRAPHQL_MAX_DEPTH == 3
    assert DEFAULTS["GRAPHQL_MAX_DEPTH"] == app_settings.GRAPHQL_MAX_DEPTH


def test_reads_are_cached_until_a_setting_changes():
    with override_settings(SMS_NOTIFICATIONS={"SMS_PRICE_UNIT": "EUR"}):
        first = conf.resolve()
        assert conf.resolve() is first  # merged once, not on every read
    assert conf.resolve() is not first


def test_an_old_top_level_name_still_works_with_one_warning(fresh_warnings):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with override_settings(SMS_NOTIFICATIONS={}, TWILIO_SMS_RATE=5):
            assert app_settings.TWILIO_SMS_RATE == 5
            assert app_settings.TWILIO_SMS_RATE == 5
        with override_settings(SMS_NOTIFICATIONS={}, TWILIO_SMS_RATE=6):  # a new cache
            assert app_settings.TWILIO_SMS_RATE == 6
    ours = [w for w in caught if issubclass(w.category, SmsNotificationsDeprecationWarning)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    assert "SMS_NOTIFICATIONS['TWILIO_SMS_RATE']" in str(ours[0].message)
    assert issubclass(SmsNotificationsDeprecationWarning, DeprecationWarning)
    assert issubclass(SmsNotificationsDeprecationWarning, SmsNotificationError)


def test_the_dict_wins_over_an_old_name_and_then_nothing_warns(fresh_warnings):
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmsNotificationsDeprecationWarning)
        with override_settings(SMS_NOTIFICATIONS={"LOGIN_MAX_FAILURES": 4}, LOGIN_MAX_FAILURES=9):
            assert app_settings.LOGIN_MAX_FAILURES == 4
            assert messages("notification.W004") == []


def test_a_check_lists_the_old_names_in_use_with_a_hint(fresh_warnings):
    with (
        warnings.catch_warnings(),
        override_settings(SMS_NOTIFICATIONS={}, REDIS_URL="redis://x", GRAPHIQL=True),
    ):
        warnings.simplefilter("ignore", SmsNotificationsDeprecationWarning)
        (warning,) = messages("notification.W004")
    assert "GRAPHIQL, REDIS_URL" in warning.msg
    assert "SMS_NOTIFICATIONS" in warning.hint


def test_an_unknown_key_is_an_error_naming_the_closest_key():
    with override_settings(SMS_NOTIFICATIONS={"TWILIO_SMS_RAET": 2, "COLOUR": "blue"}):
        found = {m.msg: m.hint for m in messages("notification.E008")}
        assert DEFAULTS["TWILIO_SMS_RATE"] == app_settings.TWILIO_SMS_RATE  # ignored meanwhile
    assert found == {
        "SMS_NOTIFICATIONS has an unknown key 'TWILIO_SMS_RAET'.": (
            "Did you mean 'TWILIO_SMS_RATE'?"
        ),
        "SMS_NOTIFICATIONS has an unknown key 'COLOUR'.": (
            "The keys are listed in the README's Configuration section (SMS_NOTIFICATIONS)."
        ),
    }


def test_a_namespace_that_is_not_a_dict_is_an_error():
    with override_settings(SMS_NOTIFICATIONS=[("TWILIO_SMS_RATE", 2)]):
        (error,) = messages("notification.E008")
        assert DEFAULTS["TWILIO_SMS_RATE"] == app_settings.TWILIO_SMS_RATE
    assert "is a list, not a dict" in error.msg


def test_the_environment_gives_only_the_variables_that_are_set(monkeypatch):
    converters = {"TWILIO_SMS_RATE": float, "SMS_QUIET_HOURS": str, "GRAPHIQL": boolean}
    converters |= {"DEFAULT_PHONE_REGION": upper, "PUBLIC_BASE_URL": url_root}
    converters |= {"TWILIO_SMS_BATCH_SIZE": int}
    for name in converters:
        monkeypatch.delenv(name, raising=False)
    assert env_values(converters) == {}  # no default repeated: the app supplies them
    monkeypatch.setenv("TWILIO_SMS_RATE", " 2.5 ")
    monkeypatch.setenv("SMS_QUIET_HOURS", "")  # blank text means something: quiet hours off
    monkeypatch.setenv("GRAPHIQL", "yes")
    monkeypatch.setenv("DEFAULT_PHONE_REGION", "gb")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://sms.example.com/")
    monkeypatch.setenv("TWILIO_SMS_BATCH_SIZE", "")  # a blank number is unset
    assert env_values(converters) == {
        "TWILIO_SMS_RATE": 2.5,
        "SMS_QUIET_HOURS": "",
        "GRAPHIQL": True,
        "DEFAULT_PHONE_REGION": "GB",
        "PUBLIC_BASE_URL": "https://sms.example.com",
    }


@pytest.mark.parametrize(
    ("converter", "raw", "words"),
    [(int, "ten", "an integer"), (float, "fast", "a number"), (boolean, "maybe", "a boolean")],
)
def test_a_malformed_variable_stops_the_process_naming_it(monkeypatch, converter, raw, words):
    monkeypatch.setenv("SMS_TEST_VARIABLE", raw)
    with pytest.raises(ImproperlyConfigured, match=f"SMS_TEST_VARIABLE must be {words}"):
        env_values({"SMS_TEST_VARIABLE": converter})


def test_a_variable_out_of_the_apps_range_stops_the_process_naming_it(monkeypatch):
    from notification.conf import out_of_range

    monkeypatch.setenv("TWILIO_SMS_VALIDITY_PERIOD", "36001")
    with pytest.raises(ImproperlyConfigured, match="must be a number from 1 to 36000, got"):
        env_values({"TWILIO_SMS_VALIDITY_PERIOD": int}, out_of_range)
    monkeypatch.setenv("TWILIO_SMS_VALIDITY_PERIOD", "36000")
    assert env_values({"TWILIO_SMS_VALIDITY_PERIOD": int}, out_of_range) == {
        "TWILIO_SMS_VALIDITY_PERIOD": 36_000
    }
