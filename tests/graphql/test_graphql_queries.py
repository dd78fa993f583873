"""notifications / notification queries over HTTP: visibility, filters, order, pages, no N+1."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notification.create.creation import SmsNotificationRequest, create_sms_notification
from notification.models import Notification, SmsNotification, SmsOptOut

pytestmark = pytest.mark.db_vendor

LIST = """
query List($filters: NotificationFilter, $order: [NotificationOrder!],
           $pagination: OffsetPaginationInput) {
  notifications(filters: $filters, order: $order, pagination: $pagination) {
    totalCount
    pageInfo { offset limit }
    results { id title }
  }
}
"""

FULL_LIST = """
query {
  notifications(pagination: {limit: 100}) {
    totalCount
    results {
      id title body status priority type userId contentType publishDatetime
      sms {
        toPhoneNumber deliveryStatus segments encoding errorCode errorMessage twilioSid
        attempts sentDatetime deliveredDatetime optedOut
      }
    }
  }
}
"""

ONE = """
query One($id: ID!) {
  notification(id: $id) { id title status sms { toPhoneNumber deliveryStatus } }
}
"""

T0 = datetime.datetime(2030, 1, 1, 9, 0, tzinfo=datetime.UTC)


def make(title, *, user=None, priority=20, minutes=0, phone="+14155550100", **sms_fields):
    created = create_sms_notification(
        SmsNotificationRequest(
            title=title,
            body=f"Body of {title}",
            to_phone_number=phone,
            user_id=user.pk if user else None,
            priority=priority,
            publish_datetime=T0 + datetime.timedelta(minutes=minutes),
        )
    )
    if sms_fields:
        SmsNotification.objects.filter(notification=created.notification).update(**sms_fields)
    return created.notification


def titles(result):
    return [n["title"] for n in result["notifications"]["results"]]


def test_users_see_only_their_notifications(graphql, make_user, plain_user):
    other = make_user("other")
    mine = make("mine", user=plain_user)
    make("theirs", user=other)
    make("nobody's")
    gql = graphql(plain_user)
    result = gql.data(LIST)
    assert titles(result) == ["mine"]
    assert result["notifications"]["totalCount"] == 1
    assert gql.data(ONE, {"id": str(mine.pk)})["notification"]["title"] == "mine"


def test_another_users_notification_is_null_not_leaked(graphql, make_user, plain_user):
    theirs = make("theirs", user=make_user("other"))
    assert graphql(plain_user).data(ONE, {"id": str(theirs.pk)}) == {"notification": None}


def test_unknown_or_malformed_id_is_null(graphql, staff_user):
    gql = graphql(staff_user)
    assert gql.data(ONE, {"id": "999999"}) == {"notification": None}
    assert gql.data(ONE, {"id": "abc"}) == {"notification": None}


def test_view_permission_sees_everything(graphql, make_user, staff_user, plain_user):
    make("a", user=plain_user)
    make("b", user=make_user("other"))
    make("c")
    gql = graphql(staff_user)
    assert sorted(titles(gql.data(LIST))) == ["a", "b", "c"]
    some = Notification.objects.get(title="b")
    assert gql.data(ONE, {"id": str(some.pk)})["notification"]["sms"] == {
        "toPhoneNumber": "+14155550100",
        "deliveryStatus": "NOT_SUBMITTED",
    }


def test_default_order_is_newest_first(graphql, staff_user):
    for title in ["first", "second", "third"]:
        make(title)
    assert titles(graphql(staff_user).data(LIST)) == ["third", "second", "first"]


def test_order_by_priority_then_publish_time(graphql, staff_user):
    make("low-early", priority=10, minutes=1)
    make("high-late", priority=30, minutes=5)
    make("high-early", priority=30, minutes=2)
    make("normal", priority=20, minutes=0)
    result = graphql(staff_user).data(
        LIST, {"order": [{"priority": "DESC"}, {"publishDatetime": "ASC"}]}
    )
    assert titles(result) == ["high-early", "high-late", "normal", "low-early"]
    # List order decides precedence.
    result = graphql(staff_user).data(
        LIST, {"order": [{"publishDatetime": "DESC"}, {"priority": "DESC"}]}
    )
    assert titles(result) == ["high-late", "high-early", "low-early", "normal"]


def test_filters(graphql, staff_user, plain_user):
    make("high", priority=30, minutes=10, user=plain_user)
    make("delivered", minutes=20, delivery_status="delivered")
    canceled = make("canceled", minutes=30)
    Notification.objects.filter(pk=canceled.pk).update(status="canceled")
    gql = graphql(staff_user)

    def matching(filters):
        return sorted(titles(gql.data(LIST, {"filters": filters})))

    assert matching({"priority": {"exact": "HIGH"}}) == ["high"]
    assert matching({"status": {"exact": "CANCELED"}}) == ["canceled"]
    assert matching({"status": {"inList": ["PENDING"]}}) == ["delivered", "high"]
    assert matching({"type": {"exact": "SMS"}}) == ["canceled", "delivered", "high"]
    assert matching({"sms": {"deliveryStatus": {"exact": "DELIVERED"}}}) == ["delivered"]
    assert matching({"userId": {"exact": str(plain_user.pk)}}) == ["high"]
    window = {"start": (T0 + datetime.timedelta(minutes=15)).isoformat(), "end": None}
    window["end"] = (T0 + datetime.timedelta(minutes=30)).isoformat()
    assert matching({"publishDatetime": {"range": window}}) == ["canceled", "delivered"]
    assert matching(
        {"publishDatetime": {"lt": (T0 + datetime.timedelta(minutes=15)).isoformat()}}
    ) == ["high"]
    assert matching({"NOT": {"status": {"exact": "PENDING"}}}) == ["canceled"]


def test_filters_cannot_widen_visibility(graphql, make_user, plain_user):
    other = make_user("other")
    make("theirs", user=other)
    result = graphql(plain_user).data(LIST, {"filters": {"userId": {"exact": str(other.pk)}}})
    assert titles(result) == []


def test_offset_pagination(graphql, staff_user):
    for i in range(7):
        make(f"n{i}", minutes=i)
    gql = graphql(staff_user)
    order = [{"publishDatetime": "ASC"}]
    page = gql.data(LIST, {"order": order, "pagination": {"offset": 2, "limit": 3}})
    assert titles(page) == ["n2", "n3", "n4"]
    assert page["notifications"]["totalCount"] == 7
    assert page["notifications"]["pageInfo"] == {"offset": 2, "limit": 3}
    last = gql.data(LIST, {"order": order, "pagination": {"offset": 6, "limit": 3}})
    assert titles(last) == ["n6"]


def test_page_size_is_capped_at_100(graphql, staff_user):
    for i in range(3):
        make(f"n{i}")
    page = graphql(staff_user).data(LIST, {"pagination": {"limit": 5000}})
    assert page["notifications"]["pageInfo"]["limit"] == 100


def _queries_for_full_list(gql) -> tuple[int, dict]:
    gql.csrf_token()
    with CaptureQueriesContext(connection) as queries:
        result = gql.data(FULL_LIST)
    assert all(n["sms"]["toPhoneNumber"] for n in result["notifications"]["results"])
    return len(queries), result


def test_nested_sms_costs_no_query_per_notification(graphql, staff_user, plain_user):
    SmsOptOut.objects.create(phone_number="+14155550199", source="inbound_stop")
    for i in range(3):
        make(f"a{i}", user=plain_user, delivery_status="sent", phone=f"+1415555019{7 + i}")
    staff_queries_3, result = _queries_for_full_list(graphql(staff_user))
    user_queries_3, _ = _queries_for_full_list(graphql(plain_user))
    assert result["notifications"]["totalCount"] == 3
    for i in range(27):
        make(f"b{i}", user=plain_user, phone="+14155550199")
    staff_queries_30, result = _queries_for_full_list(graphql(staff_user))
    user_queries_30, _ = _queries_for_full_list(graphql(plain_user))
    assert result["notifications"]["totalCount"] == 30
    opted_out = {n["title"]: n["sms"]["optedOut"] for n in result["notifications"]["results"]}
    assert opted_out == {"a0": False, "a1": False, "a2": True, **{f"b{i}": True for i in range(27)}}
    assert staff_queries_30 == staff_queries_3
    assert user_queries_30 == user_queries_3


HUGE_ID = "99999999999999999999999"


def test_impossible_id_is_null_not_a_database_error(graphql, staff_user):
    make("Alpha")
    gql = graphql(staff_user)
    for bad_id in (HUGE_ID, str(2**63), "0"):
        assert gql.data(ONE, {"id": bad_id}) == {"notification": None}


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"id": {"exact": HUGE_ID}}, "filters.id.exact"),
        ({"id": {"inList": ["1", HUGE_ID]}}, "filters.id.inList"),
        ({"userId": {"exact": HUGE_ID}}, "filters.userId.exact"),
        ({"id": {"exact": "abc"}}, "filters.id.exact"),
        ({"OR": {"userId": {"inList": [str(2**63)]}}}, "filters.OR.userId.inList"),
        ({"title": {"contains": "a\x00b"}}, "filters.title.contains"),
    ],
)
def test_filters_that_would_break_the_database_are_an_invalid_error(
    graphql, staff_user, filters, field
):
    make("Alpha")
    result = graphql(staff_user).execute(LIST, {"filters": filters})
    assert result["data"] is None
    (error,) = result["errors"]
    assert error["extensions"] == {"code": "invalid", "field": field}
    assert field in error["message"]
    assert "SQLite" not in error["message"] and "int too large" not in error["message"]


def test_valid_id_filters_still_work(graphql, staff_user):
    alpha = make("Alpha")
    make("Beta")
    result = graphql(staff_user).data(
        LIST, {"filters": {"id": {"inList": [str(alpha.pk), str(2**63 - 1)]}}}
    )
    assert titles(result) == ["Alpha"]
