"""SMS backends chosen by SMS_BACKEND, and the app's settings with their defaults.

The send job's guarantees do not depend on the backend: a backend that raises
leaves the message ``unknown`` (it may have left), never resent by itself.
"""

import io

import pytest

from notification.backends import get_backend, locmem
from notification.backends.base import Accepted, BaseSmsBackend, OutgoingSms
from notification.backends.console import ConsoleBackend
from notification.conf import DEFAULTS, app_settings
from notification.models import DeliveryStatusChoices, NotificationStatusChoices
from notification.send.batch import run_batch
from tests.support.sending_helpers import make_sms, reload
from tests.support.settings_helpers import set_sms, unset_sms

pytestmark = pytest.mark.django_db(transaction=True)

LOCMEM = "notification.backends.locmem.LocmemBackend"


@pytest.fixture
def outbox():
    locmem.outbox.clear()
    yield locmem.outbox
    locmem.outbox.clear()


class ExplodingBackend(BaseSmsBackend):
    """A backend with a bug after the message may have left."""

    def send(self, message: OutgoingSms) -> Accepted:
        raise RuntimeError("lost the answer")


def test_locmem_backend_records_each_message_with_what_the_provider_needs(settings, outbox):
    set_sms(settings, SMS_BACKEND=LOCMEM)
    set_sms(settings, PUBLIC_BASE_URL="https://notify.example.com")
    sms = make_sms(body="Your parcel has shipped")

    report = run_batch()

    assert report.sent == 1
    [message] = outbox
    assert (message.to, message.body, message.segments) == (
        "+14155550100",
        "Your parcel has shipped",
        1,
    )
    assert message.status_callback == f"https://notify.example.com/twilio/sms/status/?sms={sms.pk}"
    sms = reload(sms)
    assert sms.notification.status == NotificationStatusChoices.SENT
    assert sms.delivery_status == DeliveryStatusChoices.SENT
    assert sms.twilio_sid.startswith("SM") and len(sms.twilio_sid) == 34


def test_console_backend_prints_the_message():
    stream = io.StringIO()
    accepted = ConsoleBackend(stream=stream).send(
        OutgoingSms(
            to="+14155550100", body="Hi there", segments=1, status_callback="", validity_period=60
        )
    )
    assert accepted.status == "sent"
    assert accepted.sid in stream.getvalue()
    assert "+14155550100" in stream.getvalue() and "Hi there" in stream.getvalue()


def test_a_backend_that_raises_leaves_the_message_unknown_not_resent(settings):
    set_sms(settings, SMS_BACKEND=f"{__name__}.ExplodingBackend")
    sms = make_sms()

    report = run_batch()

    assert report.unknown == 1
    note = reload(sms).notification
    assert note.status == NotificationStatusChoices.UNKNOWN
    assert "lost the answer" in note.status_message
    assert run_batch().claimed == 0  # at most once: staff decide


def test_the_backend_follows_override_settings(settings):
    set_sms(settings, SMS_BACKEND=LOCMEM)
    assert isinstance(get_backend(), locmem.LocmemBackend)
    set_sms(settings, SMS_BACKEND="notification.backends.console.ConsoleBackend")
    assert isinstance(get_backend(), ConsoleBackend)


def test_a_setting_the_project_leaves_out_has_the_app_default(settings):
    unset_sms(settings, "TWILIO_SMS_BATCH_SIZE")
    assert app_settings.TWILIO_SMS_BATCH_SIZE == DEFAULTS["TWILIO_SMS_BATCH_SIZE"] == 100
    set_sms(settings, TWILIO_SMS_BATCH_SIZE=7)
    assert app_settings.TWILIO_SMS_BATCH_SIZE == 7


def test_an_unknown_app_setting_is_an_error_not_a_silent_none():
    with pytest.raises(AttributeError, match="TWILIO_SMS_BATCH_SIZ"):
        app_settings.TWILIO_SMS_BATCH_SIZ  # noqa: B018
