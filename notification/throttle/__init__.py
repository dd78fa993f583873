"""Abuse limits kept in Redis, so they hold across every web process.

``counters``: fixed-window counters. ``login``: the login lockout (GraphQL and admin
alike, through Django's authentication). ``user_limits``: per-user request rates and
the hourly SMS segment quota. README "Security" lists each limit and its setting.
"""
