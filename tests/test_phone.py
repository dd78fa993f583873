"""Phone number normalisation to E.164 (what we store and what Twilio gets)."""

import pytest
from django.core.exceptions import ValidationError

from notification.phone import normalize_phone_number


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
    settings.DEFAULT_PHONE_REGION = "US"
    assert normalize_phone_number(raw) == e164


def test_default_region_decides_national_formats(settings):
    settings.DEFAULT_PHONE_REGION = "GB"
    assert normalize_phone_number("07911 123456") == "+447911123456"
    settings.DEFAULT_PHONE_REGION = "US"
    with pytest.raises(ValidationError):
        normalize_phone_number("07911 123456")


def test_explicit_region_wins_over_the_setting(settings):
    settings.DEFAULT_PHONE_REGION = "US"
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
