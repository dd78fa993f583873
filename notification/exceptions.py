"""The one base class of every exception the app raises on purpose.

A host project catches ``SmsNotificationError`` to handle anything the app
refuses or reports (a resend of a delivered message, a limit reached, a
malformed webhook), without listing thirteen classes in nine modules and
without catching unrelated bugs as a bare ``except Exception`` would.

Each class keeps its module and its other base (``ValueError``,
``ValidationError``, ``PermissionDenied``, ``RuntimeError``...), so code that
caught it by those before still does: the base is added, nothing is taken away.
``tests/app/test_exceptions.py`` asserts every public exception class derives from it.
"""


class SmsNotificationError(Exception):
    """Base of every public exception of the ``notification`` app."""


class SmsNotificationsDeprecationWarning(SmsNotificationError, DeprecationWarning):
    """A deprecated way of configuring the app that still works for one release.

    Today: a setting of the app read from its old top-level name (``TWILIO_SMS_RATE
    = 5``) instead of its key in ``SMS_NOTIFICATIONS``. A host filters on this class
    to see (or silence) only the app's deprecations.
    """
