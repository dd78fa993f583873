"""Ordering for ``notifications(order: [{priority: DESC}, {publishDatetime: ASC}])``.

A list of one-key objects (strawberry-django's ``order_type``, one_of): list order is
precedence, which survives JSON variables (the keys of one object would not). Without
``order`` the model's default holds: newest first.
"""

import strawberry_django
from strawberry import auto

from notification import models


@strawberry_django.order_type(models.Notification, name="NotificationOrder")
class NotificationOrder:
    id: auto
    priority: auto
    status: auto
    publish_datetime: auto
    created_datetime: auto
    sent_datetime: auto
    title: auto
