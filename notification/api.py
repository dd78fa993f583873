"""The front door: what a host project imports from the ``notification`` app.

Every name here is a thin, documented entry into the code that does the work
(no rule is repeated here), so a host project imports from this module and
``notification.signals`` only, and the app's inner modules can move without
breaking it. What it offers:

Create, cancel, resend, reconcile::

    from notification import api

    created = api.create_sms_notification(
        api.SmsNotificationRequest(title="Order", body="Shipped", to_phone_number="+14155550100")
    )
    api.create_sms_notifications([...])      # all or nothing; BulkValidationError per index
    api.cancel_notification(created.notification.pk)   # only while pending
    api.resend_notification(notification_id)           # only unknown or failed
    api.reconcile()                                    # one pass with Twilio, now

Errors: every exception the app raises on purpose derives from
``SmsNotificationError``; invalid input is Django's ``ValidationError`` (with an
``error_dict`` keyed by field name), as from a model's ``full_clean``.

GraphQL: ``QUERY_TYPES``, ``MUTATION_TYPES``, ``SUBSCRIPTION_TYPES``,
``EXTENSIONS`` and ``EXECUTION_CONTEXT_CLASS`` merge into the host's strawberry
schema; ``HardenedGraphQLView`` serves it over HTTP, ``graphql_ws_application``
over websockets; ``HttpOnly`` keeps session login/logout mutations off sockets;
``CSRF_FAILURE_VIEW`` and ``LOGIN_LOCKOUT_BACKEND`` are the dotted paths for
the host's settings. URLs: ``include("notification.urls")`` and
``include("notification.ops.urls")``.
"""

from notification.create.changes import (
    NotificationNotCancelable,
    NotificationNotFound,
    ResendError,
    cancel_notification,
    resend_notification,
    resend_notifications,
)
from notification.create.creation import (
    MAX_BULK_NOTIFICATIONS,
    BulkValidationError,
    CreatedSmsNotification,
    SmsNotificationRequest,
    create_sms_notification,
    create_sms_notifications,
)
from notification.exceptions import SmsNotificationError
from notification.graphql.parts import (
    EXECUTION_CONTEXT_CLASS,
    EXTENSIONS,
    MUTATION_TYPES,
    QUERY_TYPES,
    SUBSCRIPTION_TYPES,
)
from notification.graphql.views import HardenedGraphQLView, HttpOnly
from notification.graphql.ws.consumer import graphql_ws_application
from notification.reconciliation.passes import ReconcileReport, reconcile
from notification.signals import sms_limit_reached, sms_received, sms_status_changed
from notification.throttle.login import LOCKOUT_BACKEND_PATH, LoginLockedOut

#: ``CSRF_FAILURE_VIEW``: a CSRF failure on the GraphQL view answers a GraphQL error.
CSRF_FAILURE_VIEW = "notification.csrf.csrf_failure"
#: Put first in ``AUTHENTICATION_BACKENDS`` (system check notification.E002/W001).
LOGIN_LOCKOUT_BACKEND = LOCKOUT_BACKEND_PATH

__all__ = [
    # create, cancel, resend, reconcile
    "SmsNotificationRequest",
    "CreatedSmsNotification",
    "MAX_BULK_NOTIFICATIONS",
    "create_sms_notification",
    "create_sms_notifications",
    "cancel_notification",
    "resend_notification",
    "resend_notifications",
    "reconcile",
    "ReconcileReport",
    # errors
    "SmsNotificationError",
    "BulkValidationError",
    "NotificationNotCancelable",
    "ResendError",
    "NotificationNotFound",
    "LoginLockedOut",
    # signals
    "sms_status_changed",
    "sms_received",
    "sms_limit_reached",
    # GraphQL and settings pieces
    "QUERY_TYPES",
    "MUTATION_TYPES",
    "SUBSCRIPTION_TYPES",
    "EXTENSIONS",
    "EXECUTION_CONTEXT_CLASS",
    "HardenedGraphQLView",
    "graphql_ws_application",
    "HttpOnly",
    "CSRF_FAILURE_VIEW",
    "LOGIN_LOCKOUT_BACKEND",
]
