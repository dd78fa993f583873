"""Property-based fuzzing of both Twilio webhooks' forms, signed like Twilio signs (issue 10).

Hypothesis draws whole forms (known and unknown statuses in any case, error
codes of any size and sign, text with NUL and control characters, huge values,
channel addresses, extra parameters Twilio may add) and each one is signed with
the SDK's ``RequestValidator``, so it passes the signature check and reaches the
parsing and the database. Properties:

* never a 500 (Twilio would retry, and the status is lost meanwhile);
* the status callback either applies the status change (a known status after
  ``queued``, for our account and our sid) or cleanly changes nothing (stale,
  unknown status, 400 for an impossible sid, 403 for another account);
* the inbound webhook answers TwiML, and records an opt-out only for a STOP
  from a phone number.
"""

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notification.delivery import STATUS_RANK, is_known
from notification.models import Notification, SmsNotification, SmsOptOut
from tests.support.settings_helpers import set_sms
from tests.support.webhook_helpers import (
    ACCOUNT_SID,
    INBOUND_PATH,
    STATUS_PATH,
    inbound_form,
    post_signed,
    queued_sms,
    short_lived_db_connections,
    status_form,
    use_test_signing,
)

SID = "SM" + "d" * 32
PHONE = "+14155550123"

pytestmark = pytest.mark.django_db(transaction=True)

FUZZ = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text as hostile as a form can carry: control characters and NUL included.
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=10),
    st.builds(lambda n, c: c * n, st.integers(0, 5_000), st.sampled_from("x\x00é€")),
)
known_status = st.sampled_from([s for s in STATUS_RANK if is_known(s)]).flatmap(
    lambda s: st.sampled_from([s, s.upper(), s.title(), f" {s} "])
)
error_code = st.one_of(
    st.just(""),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["30003", "30005", "30008", "21610", "0", "٣٠٠٠٥", "1e5", "+5"]),
    hostile_text,
)
extra_params = st.dictionaries(
    st.text(alphabet=string.ascii_letters, min_size=1, max_size=12).filter(
        lambda k: k not in {"AccountSid", "MessageSid", "SmsSid", "MessageStatus", "SmsStatus"}
    ),
    hostile_text,
    max_size=3,
)


@pytest.fixture(autouse=True)
def signed_webhooks(settings, redis):
    use_test_signing(settings)
    set_sms(settings, TWILIO_ACCOUNT_SID=ACCOUNT_SID)
    with short_lived_db_connections():
        yield settings


@pytest.fixture
def sms(transactional_db) -> SmsNotification:
    return queued_sms(SID)


def _reset(sms: SmsNotification) -> None:
    """Back to "queued, sent by the send job" before each example."""
    SmsNotification.objects.filter(pk=sms.pk).update(
        twilio_sid=SID, delivery_status="queued", error_code=None, error_message=""
    )
    Notification.objects.filter(pk=sms.notification_id).update(status="sent", status_message="")
    SmsOptOut.objects.all().delete()


@FUZZ
@given(
    status=st.one_of(known_status, hostile_text),
    sid=st.one_of(st.just(SID), st.just(SID.upper()), hostile_text),
    account=st.one_of(st.just(ACCOUNT_SID), hostile_text),
    code=error_code,
    message=hostile_text,
    sender=hostile_text,
    recipient=hostile_text,
    extra=extra_params,
)
def test_status_callback_never_500s_and_applies_or_refuses_cleanly(
    client, sms, status, sid, account, code, message, sender, recipient, extra
):
    _reset(sms)
    form = status_form(sid, status, **extra)
    form.update(AccountSid=account, ErrorCode=code, ErrorMessage=message, From=sender)
    form["To"] = recipient
    response = post_signed(client, STATUS_PATH, form)
    assert response.status_code in (200, 400, 403), (response.status_code, response.content)

    sms.refresh_from_db()
    changed = sms.delivery_status != "queued" or sms.twilio_sid != SID
    ours = account == ACCOUNT_SID and sid == SID
    normalised = status.strip().lower()
    if response.status_code != 200 or not ours:
        assert not changed, (response.status_code, sms.delivery_status)
    elif is_known(normalised) and STATUS_RANK[normalised] > STATUS_RANK["queued"]:
        assert changed, (status, code)  # applied (or re-queued for a retryable failure)
    elif is_known(normalised):
        assert not changed  # queued, accepted, scheduled: not after "queued"
    assert "\x00" not in sms.error_message


stop_words = st.sampled_from(["STOP", "stop", "Stop.", "STOP!", "unsubscribe", " quit ", "END?"])


@FUZZ
@given(
    body=st.one_of(stop_words, st.sampled_from(["START", "HELP", "Info."]), hostile_text),
    sender=st.one_of(
        st.just(PHONE),
        st.sampled_from(["messenger:123456789012345678", "whatsapp:+14155550123", "22395"]),
        hostile_text,
    ),
    account=st.one_of(st.just(ACCOUNT_SID), hostile_text),
    extra=extra_params,
)
def test_inbound_never_500s_and_records_opt_outs_only_for_phone_numbers(
    client, transactional_db, body, sender, account, extra
):
    SmsOptOut.objects.all().delete()
    form = {**inbound_form(body, sender), **extra, "AccountSid": account}
    response = post_signed(client, INBOUND_PATH, form)
    assert response.status_code in (200, 400, 403), (response.status_code, response.content)
    if response.status_code == 200:
        assert response["Content-Type"].startswith("text/xml")
    recorded = list(SmsOptOut.objects.values_list("phone_number", flat=True))
    assert recorded in ([], [PHONE]), recorded
    if account == ACCOUNT_SID and sender == PHONE and body in {"STOP", "stop", "Stop.", "STOP!"}:
        assert recorded == [PHONE]
    if sender != PHONE:
        assert recorded == []
