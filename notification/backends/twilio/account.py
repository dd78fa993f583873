"""Whether a signed webhook is about our Twilio account.

The signature proves the sender knows our auth token; ``AccountSid`` says which
account the message belongs to. They disagree only when something is
misconfigured (a number of another account, or a subaccount, pointed at our
URL while sharing the token) or the token leaked: either way the callback does
not describe one of our messages and must not change one.
"""

from collections.abc import Mapping

from notification.conf import app_settings


def is_for_our_account(form: Mapping[str, str]) -> bool:
    """True unless ``TWILIO_ACCOUNT_SID`` is set and the form names another account.

    Without a configured account (the app only checks signatures then) every
    signed form is accepted, as before.
    """
    ours = app_settings.TWILIO_ACCOUNT_SID
    return not ours or (form.get("AccountSid") or "").strip() == ours
