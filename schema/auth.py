"""Session login and logout for this project's frontend (a host project brings its own auth)."""

import strawberry
import strawberry_django

from notification.graphql.throttles import login_lockout
from notification.graphql.types import User
from notification.graphql.views import HttpOnly


@strawberry.type
class AuthMutation:
    login: User = strawberry_django.auth.login(
        description="Log in with a session cookie; send the CSRF token (X-CSRFToken). "
        "Too many failed logins lock the account and the client address out for a while "
        "(error code login_locked, with retryAfter in seconds).",
        permission_classes=[HttpOnly],
        extensions=[login_lockout()],
    )
    logout: bool = strawberry_django.auth.logout(
        description="End the session; true if someone was logged in.",
        permission_classes=[HttpOnly],
    )
