"""Rows load into the same instances as Django's own ``Model.from_db`` would build.

``notification/model_loading.py`` skips ``Model.__init__`` only where that can
change nothing; each test compares with Django's path on the same row.
"""

import pytest
from django.db import connection, models
from django.db.models.signals import post_init

from notification.model_loading import load_from_db
from notification.models import Notification, SmsNotification

pytestmark = pytest.mark.django_db

DJANGO_FROM_DB = models.Model.from_db.__func__  # type: ignore[attr-defined]


def _made() -> SmsNotification:
    note = Notification.objects.create(title="Loaded", body="b", url="https://example.com/")
    return SmsNotification.objects.create(
        notification=note, to_phone_number="+14155550100", error_code=30003
    )


def _state(instance: models.Model) -> tuple:
    fields = {k: v for k, v in instance.__dict__.items() if k != "_state"}
    return (
        type(instance),
        list(fields.items()),  # order included
        instance._state.adding,
        instance._state.db,
        instance.get_deferred_fields(),
        instance._state.fields_cache,
    )


@pytest.mark.parametrize("model", [Notification, SmsNotification])
@pytest.mark.parametrize("subset", [False, True])
def test_the_same_instance_as_djangos_from_db(model, subset):
    _made()
    names = [f.attname for f in model._meta.concrete_fields]
    if subset:  # what .only() loads: the pk and a few columns, in the model's order
        names = [n for n in names if n in {"id", "title", "status", "to_phone_number"}]
    (values,) = model.objects.values_list(*names)
    ours = load_from_db(model, connection.alias, names, values)
    django = DJANGO_FROM_DB(model, connection.alias, names, values)
    assert _state(ours) == _state(django)
    assert ours == django and ours.pk is not None


def test_querysets_load_the_same_rows_and_they_behave_as_loaded_rows():
    sms = _made()
    loaded = SmsNotification.objects.select_related("notification").get(pk=sms.pk)
    assert loaded.notification.title == "Loaded" and loaded._state.adding is False
    partial = Notification.objects.only("id", "status").get(pk=sms.notification_id)
    assert partial.get_deferred_fields() >= {"title", "body"}
    assert partial.title == "Loaded"  # a deferred column still loads on access
    reverse = (
        Notification.objects.select_related("sms")
        .only("id", "sms__segments")
        .get(pk=sms.notification_id)
    )
    assert reverse.sms.segments == sms.segments and reverse.sms.pk == sms.pk
    partial.status = "failed"
    partial.save(update_fields=["status"])  # an update of a loaded row, not an insert
    assert Notification.objects.get(pk=partial.pk).status == "failed"
    assert Notification.objects.count() == 1


def test_an_init_receiver_keeps_djangos_path():
    """A post_init receiver (an ImageField's, a host's tracker) still sees every row."""
    _made()
    seen: list[models.Model] = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=SmsNotification)
    try:
        rows = list(SmsNotification.objects.all())
        notes = list(Notification.objects.all())
    finally:
        post_init.disconnect(receiver, sender=SmsNotification)
    assert seen == rows and len(rows) == 1
    assert len(notes) == 1  # another model's rows: no receiver, the direct path
