"""The floor ``bench/api.py`` compares the GraphQL API with: plain Django views.

They do the ORM work of ``createSmsNotification`` and of listing 100 notifications
with their SMS, and answer JSON of the same fields, behind the project's whole
middleware stack (sessions, CSRF, auth, CORS...), with no GraphQL: what the
same request costs when nothing but Django and the database is in the way.

The ORM work includes the permission rule any view serving these rows must
apply (Django's ``has_perm``: two queries, the user's and their groups'
permissions): creating needs ``notification.add_notification``, and the list is
what ``visible_to`` lets the user read (``bench/api.py --floor-checks off``
leaves both out, for comparison with the earlier floor). Bench-only:
``bench/settings_api.py`` routes them; the app never serves them.
"""

import json
import os

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns
from notification.graphql.filters import ADD_PERMISSION, visible_to
from notification.models import Notification, SmsNotification

#: Set by ``bench/api.py`` for its server: "0" leaves the permission rule out.
CHECKS = os.environ.get("BENCH_FLOOR_CHECKS", "1") != "0"

LIST_FIELDS = (
    "id",
    "title",
    "status",
    "created_datetime",
    "sms__to_phone_number",
    "sms__delivery_status",
    "sms__segments",
)


def create(request: HttpRequest) -> JsonResponse:
    if request.method != "POST" or not request.user.is_authenticated:
        return JsonResponse({"error": "forbidden"}, status=403)
    if CHECKS and not request.user.has_perm(ADD_PERMISSION):
        return JsonResponse({"error": "forbidden"}, status=403)
    data = json.loads(request.body)
    with transaction.atomic():
        note = Notification.objects.create(
            title=data["title"],
            body=data["body"],
            user_id=data.get("userId"),
            created_by=request.user,
        )
        sms = SmsNotification.objects.create(
            notification=note, to_phone_number=data["toPhoneNumber"], segments=1
        )
    return JsonResponse(
        {"notification": {"id": note.pk, "status": note.status}, "sms": {"id": sms.pk}}
    )


def listing(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"error": "forbidden"}, status=403)
    notifications = Notification.objects.all()
    if CHECKS:
        notifications = visible_to(notifications, request.user)
    rows = list(notifications.order_by("-pk").values(*LIST_FIELDS)[:100])
    total = notifications.count()
    return JsonResponse({"totalCount": total, "results": rows})


urlpatterns = [
    path("floor/create/", create),
    path("floor/list/", listing),
    *project_urlpatterns,
]
