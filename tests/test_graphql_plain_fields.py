"""Plain model attributes take strawberry's basic path; everything else keeps its resolver.

``notification/graphql/plain_fields.py``: a field may skip strawberry's resolver chain
only when the chain has nothing to do, and a column that was not loaded is still
read (the library's way), never answered as missing.
"""

import pytest

from notification.models import Notification
from schema.schema import schema


def fields(type_name: str) -> dict:
    return {f.name: f for f in schema.get_type_by_name(type_name).fields}


def test_only_plain_columns_are_basic():
    notification = fields("Notification")
    sms = fields("SmsNotification")
    assert notification["title"].is_basic_field and sms["segments"].is_basic_field
    # A relation, a resolver, and a field with an annotation + resolver keep the chain.
    assert not notification["sms"].is_basic_field
    assert not notification["content_type"].is_basic_field
    assert not sms["opted_out"].is_basic_field
    # The list field (arguments, permission extension) is not touched.
    query = {f.name: f for f in schema.get_type_by_name("Query").fields}
    assert not query["notifications"].is_basic_field


@pytest.mark.django_db
def test_a_column_that_was_not_loaded_is_still_read():
    made = Notification.objects.create(title="Deferred", body="b")
    title = fields("Notification")["title"]
    partial = Notification.objects.only("id").get(pk=made.pk)
    assert "title" not in partial.__dict__
    assert title.get_result(partial, None, [], {}) == "Deferred"
    loaded = Notification.objects.get(pk=made.pk)
    assert title.get_result(loaded, None, [], {}) == "Deferred"


def test_a_renamed_field_reads_its_column():
    assert fields("SmsNotification")["next_attempt_at"]._column_attname == "next_attempt_datetime"
