"""One definition of a valid notification (issue 20): the rules are the model fields'
validators, and the GraphQL create, the bulk create, the admin's add form and the
model's own ``full_clean()`` refuse the same bad inputs, with the API's codes, and
write nothing; a good input passes all of them."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from notification.models import Notification, SmsNotification, SmsOptOut
from notification.validators import URL_MAX_LENGTH, validate_notification_url
from notification.values import MAX_BODY_CHARACTERS
from tests.app.test_admin import add_form
from tests.graphql.test_graphql_create import CREATE, CREATE_MANY, valid_input
from tests.support.settings_helpers import sms_settings

ADD_URL = reverse("admin:notification_notification_add")
PHONE = "sms-0-to_phone_number"

# (what is wrong, the field, its value, the API's code). The API's field is the
# camelCase of the model's; the admin posts the same value to the same field.
BAD = [
    ("ftp URL", "url", "ftp://example.com/file", "invalid"),
    ("ftps URL", "url", "ftps://example.com/x", "invalid"),
    ("javascript URL", "url", "javascript:alert(1)", "invalid"),
    ("URL without a scheme's slashes", "url", "https:example.com", "invalid"),
    ("NUL in URL", "url", "https://example.com/\x00", "invalid"),
    ("too long URL", "url", "https://example.com/" + "a" * URL_MAX_LENGTH, "max_length"),
    ("bad phone", "to_phone_number", "not a number", "invalid_phone_number"),
    ("phone with extension", "to_phone_number", "+1 415 555 0100 ext. 12", "invalid_phone_number"),
    ("premium-rate number", "to_phone_number", "+1 900 555 0100", "invalid_phone_number"),
    ("country not allowed", "to_phone_number", "+998901234567", "country_not_allowed"),
    ("empty body", "body", "", "required"),
    ("blank body", "body", "   \n ", "required"),
    ("too long body", "body", "x" * (MAX_BODY_CHARACTERS + 1), "max_length"),
    ("NUL in body", "body", "Hi\x00there", "invalid"),
    ("empty title", "title", "", "required"),
    ("too long title", "title", "t" * 256, "max_length"),
    ("NUL in title", "title", "Hi\x00", "invalid"),
]
IDS = [case[0] for case in BAD]
# The admin's own form fields refuse some of these before the model's rules run (an
# empty required field, NUL in any text): the same refusal under Django's form code.
# (A form field may add its own errors beside the model's: a URL over the form field's
# max_length is also "invalid" to Django's URLValidator.)
ADMIN_FORM_CODES = {
    "empty body": "required",
    "blank body": "required",
    "empty title": "required",
    "NUL in body": "null_characters_not_allowed",
    "NUL in title": "null_characters_not_allowed",
    "NUL in URL": "null_characters_not_allowed",
}


def graphql_field(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def api_input(field: str, value: str) -> dict[str, str]:
    return valid_input(**{graphql_field(field): value})


def admin_input(field: str, value: str) -> dict[str, str]:
    return add_form(
        **{PHONE: "+14155550100", (PHONE if field == "to_phone_number" else field): value}
    )


@pytest.mark.parametrize(("what", "field", "value", "code"), BAD, ids=IDS)
def test_the_graphql_create_refuses(graphql, staff_user, what, field, value, code):
    payload = graphql(staff_user).data(CREATE, {"input": api_input(field, value)})
    payload = payload["createSmsNotification"]
    assert payload["notification"] is None
    errors = [(e["field"], e["code"]) for e in payload["errors"]]
    assert errors == [(graphql_field(field), code)], payload["errors"]
    assert not Notification.objects.exists()


@pytest.mark.parametrize(("what", "field", "value", "code"), BAD, ids=IDS)
def test_the_bulk_create_refuses(graphql, staff_user, what, field, value, code):
    items = [valid_input(), api_input(field, value)]
    payload = graphql(staff_user).data(CREATE_MANY, {"input": items})["createSmsNotifications"]
    errors = [(e["field"], e["code"], e["index"]) for e in payload["errors"]]
    assert errors == [(graphql_field(field), code, 1)]
    assert not Notification.objects.exists()  # all or nothing: not even the good item


def admin_errors(response) -> dict[str, list[str]]:
    """The codes of every error on the admin page, by field (the inline's too)."""
    context = response.context
    forms = [context["adminform"].form] + list(context["inline_admin_formsets"][0].formset)
    codes: dict[str, list[str]] = {}
    for form in forms:
        for name, errors in form.errors.as_data().items():
            codes.setdefault(name, []).extend(error.code for error in errors)
    return codes


@pytest.mark.parametrize(("what", "field", "value", "code"), BAD, ids=IDS)
def test_the_admin_add_form_refuses(admin_client, what, field, value, code):
    response = admin_client.post(ADD_URL, admin_input(field, value))
    assert response.status_code == 200  # the form again, with the error
    errors = admin_errors(response)
    assert set(errors) == {field}, errors
    assert ADMIN_FORM_CODES.get(what, code) in errors[field], errors
    assert not Notification.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("what", "field", "value", "code"), BAD, ids=IDS)
def test_the_models_full_clean_refuses(what, field, value, code):
    """A host project's own ``full_clean()`` (and so any ModelForm) refuses them too.
    Django's code for an empty required field is ``blank``: the API calls it
    ``required``. National formats are the API's and the forms' to convert."""
    if field == "to_phone_number":
        sms = SmsNotification(to_phone_number=value)
        with pytest.raises(ValidationError) as refused:
            sms.full_clean(exclude={"notification"})
    else:
        notification = Notification(**{"title": "Hello", "body": "Hi", field: value})
        with pytest.raises(ValidationError) as refused:
            notification.full_clean()
    assert set(refused.value.error_dict) == {field}
    first = refused.value.error_dict[field][0].code
    assert first == code or (first, code) == ("blank", "required")


@pytest.mark.django_db
def test_the_model_stores_only_e164_numbers():
    # The conversion is the forms' and the API's; the column holds its result only.
    with pytest.raises(ValidationError) as refused:
        SmsNotification(to_phone_number="(415) 555-0100").full_clean(exclude={"notification"})
    assert refused.value.error_dict["to_phone_number"][0].code == "invalid_phone_number"
    SmsNotification(to_phone_number="+14155550100").full_clean(exclude={"notification"})


@pytest.mark.django_db
def test_an_opt_out_is_any_reachable_number_not_only_an_allowed_one():
    # Opting out is never refused for the country: the allow-list is about sending.
    with sms_settings(SMS_ALLOWED_COUNTRIES="US"):
        SmsOptOut(phone_number="+998901234567", source="admin").full_clean()
        with pytest.raises(ValidationError):
            SmsOptOut(phone_number="+19005550100", source="admin").full_clean()


@pytest.mark.django_db
def test_the_allow_list_is_read_when_validating():
    sms = SmsNotification(to_phone_number="+998901234567")
    with sms_settings(SMS_ALLOWED_COUNTRIES="US,UZ"):
        sms.full_clean(exclude={"notification"})
    with sms_settings(SMS_ALLOWED_COUNTRIES="US"), pytest.raises(ValidationError):
        sms.full_clean(exclude={"notification"})


def test_the_url_field_carries_the_one_url_rule():
    field = Notification._meta.get_field("url")
    assert field.validators[0] is validate_notification_url


@pytest.mark.django_db
def test_the_good_inputs_pass_all_three(graphql, staff_user, admin_client):
    url = "https://example.com/orders/42"
    one = graphql(staff_user).data(CREATE, {"input": valid_input(url=url)})
    assert one["createSmsNotification"]["errors"] == []
    many = graphql(staff_user).data(CREATE_MANY, {"input": [valid_input(url=url)]})
    assert many["createSmsNotifications"]["errors"] == []
    form = add_form(url=url, **{PHONE: "(415) 555-0100"})
    assert admin_client.post(ADD_URL, form).status_code == 302
    assert Notification.objects.filter(url=url).count() == 3
    assert set(SmsNotification.objects.values_list("to_phone_number", flat=True)) == {
        "+14155550100"
    }
    for notification in Notification.objects.all():
        notification.full_clean(exclude={"user", "created_by", "content_type"})


@pytest.mark.django_db
def test_save_converts_a_national_number_with_the_rules_conversion_and_judges_nothing():
    """``save()`` is no third definition: a national number becomes what the forms and
    the API would store (which the model's rules then accept), an unreadable one is
    refused by that same conversion, and anything else is ``full_clean``'s to judge."""
    notification = Notification.objects.create(title="Hi", body="Hello")
    sms = SmsNotification.objects.create(
        notification=notification, to_phone_number="(415) 555-0100"
    )
    assert sms.to_phone_number == "+14155550100"
    sms.full_clean()
    with pytest.raises(ValidationError) as refused:
        SmsNotification(notification=notification, to_phone_number="(415) 555").save()
    assert refused.value.code == "invalid_phone_number"
    assert SmsNotification.objects.count() == 1
    # Written as E.164 already: stored as given; the rules refuse it when asked.
    premium = SmsNotification(to_phone_number="+19005550100")
    with pytest.raises(ValidationError) as judged:
        premium.full_clean(exclude={"notification"})
    assert judged.value.error_dict["to_phone_number"][0].code == "invalid_phone_number"
