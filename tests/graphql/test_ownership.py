"""Ownership: "yours" is what is addressed to you or what you created; a filter tells them apart."""

import pytest

from notification.models import Notification

CREATE = """
mutation Create($input: CreateSmsNotificationInput!) {
  createSmsNotification(input: $input) { notification { id createdById userId } errors { code } }
}
"""
LIST = """
query List($filters: NotificationFilter) {
  notifications(filters: $filters) { totalCount results { title } }
}
"""
ONE = "query One($id: ID!) { notification(id: $id) { id title } }"


@pytest.fixture
def people(make_user):
    return {
        "creator": make_user("creator", perms=["notification.add_notification"]),
        "recipient": make_user("recipient"),
        "stranger": make_user("stranger"),
    }


def titles(client, filters=None) -> list[str]:
    result = client.data(LIST, {"filters": filters})["notifications"]
    assert result["totalCount"] == len(result["results"])
    return sorted(item["title"] for item in result["results"])


def test_the_creator_and_the_recipient_both_see_it_and_nobody_else(graphql, people):
    creator = graphql(people["creator"])
    payload = creator.data(
        CREATE,
        {
            "input": {
                "title": "For recipient",
                "body": "Hello",
                "toPhoneNumber": "+14155550100",
                "userId": str(people["recipient"].pk),
            }
        },
    )["createSmsNotification"]
    assert payload["errors"] == []
    created = payload["notification"]
    assert created["createdById"] == str(people["creator"].pk)
    assert created["userId"] == str(people["recipient"].pk)

    for person in ("creator", "recipient"):
        client = graphql(people[person])
        assert titles(client) == ["For recipient"], person
        assert client.data(ONE, {"id": created["id"]})["notification"] is not None, person
    stranger = graphql(people["stranger"])
    assert titles(stranger) == []
    assert stranger.data(ONE, {"id": created["id"]})["notification"] is None


def test_the_ownership_filter_tells_created_from_addressed(graphql, people):
    creator, recipient = people["creator"], people["recipient"]
    Notification.objects.create(title="mine, made", body="b", created_by=creator)
    Notification.objects.create(title="to me", body="b", user=creator)
    Notification.objects.create(title="both", body="b", user=creator, created_by=creator)
    Notification.objects.create(title="for recipient", body="b", user=recipient, created_by=creator)
    Notification.objects.create(title="not mine", body="b", user=recipient)

    client = graphql(creator)
    assert titles(client) == ["both", "for recipient", "mine, made", "to me"]
    assert titles(client, {"ownership": "CREATED_BY_ME"}) == ["both", "for recipient", "mine, made"]
    assert titles(client, {"ownership": "ADDRESSED_TO_ME"}) == ["both", "to me"]
    assert titles(graphql(recipient), {"ownership": "CREATED_BY_ME"}) == []


def test_rows_made_with_the_orm_have_no_creator(graphql, staff_user):
    notification = Notification.objects.create(title="orm", body="b")
    result = graphql(staff_user).data(
        "query One($id: ID!) { notification(id: $id) { createdById } }", {"id": notification.pk}
    )
    assert result["notification"] == {"createdById": None}
