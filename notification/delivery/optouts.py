"""Opt-outs on the sending side: never hand an opted-out number to Twilio.

Checked inside the claim query (an ``EXISTS`` annotation), so opted-out rows
cost no extra query and never reach the dispatcher. Error 21610 from Twilio
(the recipient replied STOP to Twilio directly) is recorded here too, so the
next message to that number stops on our side.
"""

from collections.abc import Iterable

from django.db.models import Exists, OuterRef

from notification.models import OptOutSourceChoices, SmsOptOut


def opted_out_annotation() -> Exists:
    """``EXISTS`` for an ``SmsNotification`` queryset: is its number opted out?"""
    return Exists(SmsOptOut.objects.filter(phone_number=OuterRef("to_phone_number")))


def opt_out_reason(phone_number: str) -> str:
    return (
        f"Not sent: {phone_number} has opted out of SMS (replied STOP or was blocked); "
        "it was never handed to Twilio."
    )


def record_twilio_opt_outs(phone_numbers: Iterable[str]) -> None:
    """Record numbers Twilio refused with 21610, in one query; existing ones are kept."""
    numbers = sorted(set(phone_numbers))
    if numbers:
        SmsOptOut.objects.bulk_create(
            [SmsOptOut(phone_number=n, source=OptOutSourceChoices.TWILIO_21610) for n in numbers],
            ignore_conflicts=True,
        )
