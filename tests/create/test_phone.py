"""Phone number normalisation to E.164 (what we store and what Twilio gets)."""

import pytest
from django.core.exceptions import ValidationError

from notification.values import normalize_phone_number
from tests.support.settings_helpers import set_sms


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+14155550100", "+14155550100"),
        ("+1 415 555 0100", "+14155550100"),
        ("+1 (415) 555-0100", "+14155550100"),
        ("  +14155550100  ", "+14155550100"),
        ("(415) 555-0100", "+14155550100"),  # national format, DEFAULT_PHONE_REGION=US
        ("415.555.0100", "+14155550100"),
        ("+44 7911 123456", "+447911123456"),
        ("+15005550006", "+15005550006"),  # Twilio test credentials' magic numbers
        ("+15005550001", "+15005550001"),
    ],
)
def test_valid_numbers_become_e164(raw, e164, settings):
    set_sms(settings, DEFAULT_PHONE_REGION="US")
    assert normalize_phone_number(raw) == e164


def test_default_region_decides_national_formats(settings):
    set_sms(settings, DEFAULT_PHONE_REGION="GB")
    assert normalize_phone_number("07911 123456") == "+447911123456"
    set_sms(settings, DEFAULT_PHONE_REGION="US")
    with pytest.raises(ValidationError):
        normalize_phone_number("07911 123456")


def test_explicit_region_wins_over_the_setting(settings):
    set_sms(settings, DEFAULT_PHONE_REGION="US")
    assert normalize_phone_number("07911 123456", region="GB") == "+447911123456"


@pytest.mark.parametrize("raw", ["", "   ", None])
def test_missing_number_is_required(raw):
    with pytest.raises(ValidationError) as exc:
        normalize_phone_number(raw)
    assert exc.value.code == "required"


@pytest.mark.parametrize(
    "raw", ["12", "hello", "+1 415 555 010", "+999 1234567", "+1415555010012345", "555-0100"]
)
def test_invalid_numbers_are_refused(raw):
    with pytest.raises(ValidationError) as exc:
        normalize_phone_number(raw)
    assert exc.value.code == "invalid_phone_number"
    assert raw.strip() in exc.value.messages[0]


@pytest.mark.parametrize(
    "raw", ["+14155550100 ext. 12", "+1 415 555 0100 x7", "(415) 555-0100;ext=3"]
)
def test_an_extension_is_refused_not_dropped(raw, settings):
    """E.164 has no extension: storing the number without it would text someone else."""
    set_sms(settings, DEFAULT_PHONE_REGION="US")
    with pytest.raises(ValidationError) as exc:
        normalize_phone_number(raw)
    assert exc.value.code == "invalid_phone_number"
    assert "extension" in exc.value.messages[0]


@pytest.mark.parametrize(
    "raw", ["+19005551234", "+1 900 234 5678", "+449012345678", "+44 909 876 5432"]
)
def test_premium_rate_numbers_are_refused(raw):
    with pytest.raises(ValidationError) as exc:
        normalize_phone_number(raw)
    assert exc.value.code == "invalid_phone_number"
    assert "premium-rate" in exc.value.messages[0]
