"""smsSegments over HTTP, and segments stored on notifications created through the API."""

import pytest

from notification.models import SmsNotification
from tests.create.test_segments import CASES

SEGMENTS = """
query Segments($body: String!) {
  smsSegments(body: $body) { encoding segments characters charactersPerSegment }
}
"""


@pytest.mark.parametrize(("body", "encoding", "segments", "characters", "per_segment"), CASES)
def test_sms_segments_query(graphql, plain_user, body, encoding, segments, characters, per_segment):
    result = graphql(plain_user).data(SEGMENTS, {"body": body})["smsSegments"]
    assert result == {
        "encoding": encoding.name,
        "segments": segments,
        "characters": characters,
        "charactersPerSegment": per_segment,
    }


def test_sms_segments_needs_login(graphql):
    result = graphql().execute(SEGMENTS, {"body": "hello"})
    assert result["data"] is None
    assert result["errors"][0]["message"] == "Log in to use this API."


@pytest.mark.parametrize(
    ("body", "segments", "encoding"),
    [("a" * 161, 2, "gsm7"), ("😀" * 36, 2, "ucs2"), ("€" * 80, 1, "gsm7")],
)
def test_created_notification_stores_segments(graphql, staff_user, body, segments, encoding):
    graphql(staff_user).data(
        """mutation($body: String!) {
          createSmsNotification(input: {title: "t", body: $body, toPhoneNumber: "+14155550100"})
          { errors { field } }
        }""",
        {"body": body},
    )
    sms = SmsNotification.objects.get()
    assert (sms.segments, sms.encoding) == (segments, encoding)


def test_sms_segments_refuses_bodies_longer_than_an_sms_can_carry(graphql, plain_user):
    gql = graphql(plain_user)
    assert gql.data(SEGMENTS, {"body": "x" * 1600})["smsSegments"]["segments"] == 11
    result = gql.execute(SEGMENTS, {"body": "x" * 1601})
    assert result["data"] is None
    (error,) = result["errors"]
    assert error["extensions"] == {"code": "max_length", "field": "body"}
    assert "1601" in error["message"] and "1600" in error["message"]
