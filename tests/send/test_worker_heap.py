"""The RQ worker forks each job's work horse with its heap frozen (``gc.freeze``), so the
horse's full collections skip the inherited objects; the worker itself goes on
collecting its own garbage."""

import gc

import django_rq

from notification.conf import app_settings
from notification.processes import SmsWorker


def test_the_work_horse_inherits_a_frozen_heap_and_the_worker_unfreezes(redis) -> None:
    queue = django_rq.get_queue(app_settings.SMS_QUEUE_NAME)
    job = queue.enqueue("tests.support.heap_probe.frozen_objects")
    worker = SmsWorker([queue], connection=queue.connection)

    assert worker.work(burst=True)

    job.refresh()
    assert job.get_status() == "finished"
    assert job.return_value() > 10_000  # Django, the app, the SDK: all of it frozen
    assert gc.get_freeze_count() == 0  # the worker's own heap is collected as before


def test_a_heap_the_host_froze_itself_stays_frozen(redis) -> None:
    queue = django_rq.get_queue(app_settings.SMS_QUEUE_NAME)
    job = queue.enqueue("tests.support.heap_probe.frozen_objects")
    gc.freeze()  # what a host's pre-fork start-up may do
    try:
        frozen = gc.get_freeze_count()
        assert SmsWorker([queue], connection=queue.connection).work(burst=True)
        job.refresh()
        # The horse saw the host's frozen heap, nothing frozen on top of it (frozen
        # objects that were freed meanwhile leave the count)...
        assert 0 < job.return_value() <= frozen
        # ...and the worker did not unfreeze it.
        assert 0 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()
