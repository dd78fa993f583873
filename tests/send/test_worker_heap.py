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
