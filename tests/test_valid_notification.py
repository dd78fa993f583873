"""One definition of a valid notification: the GraphQL create, the bulk create and the
admin's add form refuse the same bad inputs (issue 20), and write nothing."""

import pytest
from django.urls import reverse

from notification.models import Notification
from notification.validators import validate_web_url
from notification.segments import MAX_BODY_CHARACTERS
from tests.test_admin import add_form
from tests.test_graphql_create import CREATE, CREATE_MANY, valid_input

ADD_URL = reverse("admin:notification_notification_add")

# (what is wrong, GraphQL input overrides, admin form overrides, the field refused)
BAD = [
    ("ftp URL", {"url": "ftp://example.com/file"}, {"url": "ftp://example.com/file"}, "url"),
    ("ftps URL", {"url": "ftps://example.com/x"}, {"url": "ftps://example.com/x"}, "url"),
    (
        "bad phone",
        {"toPhoneNumber": "not a number"},
        {"sms-0-to_phone_number": "not a number"},
        "to_phone_number",
    ),
    (
        "country not allowed",
        {"toPhoneNumber": "+998901234567"},
        {"sms-0-to_phone_number": "+998901234567"},
        "to_phone_number",
    ),
    (
        "too long body",
        {"body": "x" * (MAX_BODY_CHARACTERS + 1)},
        {"body": "x" * (MAX_BODY_CHARACTERS + 1)},
        "body",
    ),
]
IDS = [case[0] for case in BAD]


def graphql_field(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@pytest.mark.parametrize(("what", "api_input", "admin_input", "field"), BAD, ids=IDS)
def test_the_graphql_create_refuses(graphql, staff_user, what, api_input, admin_input, field):
    result = graphql(staff_user).data(CREATE, {"input": valid_input(**api_input)})
    payload = result["createSmsNotification"]
    assert payload["notification"] is None
    assert [e["field"] for e in payload["errors"]] == [graphql_field(field)], payload["errors"]
    assert not Notification.objects.exists()


@pytest.mark.parametrize(("what", "api_input", "admin_input", "field"), BAD, ids=IDS)
def test_the_bulk_create_refuses(graphql, staff_user, what, api_input, admin_input, field):
    items = [valid_input(), valid_input(**api_input)]
    payload = graphql(staff_user).data(CREATE_MANY, {"input": items})["createSmsNotifications"]
    assert [(e["field"], e["index"]) for e in payload["errors"]] == [(graphql_field(field), 1)]
    assert not Notification.objects.exists()  # all or nothing: not even the good item


@pytest.mark.parametrize(("what", "api_input", "admin_input", "field"), BAD, ids=IDS)
def test_the_admin_add_form_refuses(admin_client, what, api_input, admin_input, field):
    form = add_form(**{"sms-0-to_phone_number": "+14155550100", **admin_input})
    response = admin_client.post(ADD_URL, form)
    assert response.status_code == 200  # the form again, with the error
    context = response.context
    errors = context["adminform"].form.errors
    inline_errors = [f.errors for f in context["inline_admin_formsets"][0].formset.forms]
    refused = set(errors) | {name for e in inline_errors for name in e}
    assert refused == {field}, (errors, inline_errors)
    assert not Notification.objects.exists()


def test_the_admin_and_the_api_share_the_models_url_rule():
    field = Notification._meta.get_field("url")
    assert validate_web_url in field.validators or any(
        v is not None and getattr(v, "__name__", "") == "validate_notification_url"
        for v in field.validators
    )


@pytest.mark.django_db
def test_the_good_inputs_pass_all_three(graphql, staff_user, admin_client):
    url = "https://example.com/orders/42"
    one = graphql(staff_user).data(CREATE, {"input": valid_input(url=url)})
    assert one["createSmsNotification"]["errors"] == []
    many = graphql(staff_user).data(CREATE_MANY, {"input": [valid_input(url=url)]})
    assert many["createSmsNotifications"]["errors"] == []
    form = add_form(url=url, **{"sms-0-to_phone_number": "+14155550100"})
    assert admin_client.post(ADD_URL, form).status_code == 302
    assert Notification.objects.filter(url=url).count() == 3
