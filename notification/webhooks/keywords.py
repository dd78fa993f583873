"""The words an inbound SMS may be, and how a message is reduced to one (the one place).

**Opt-out** is the union of Twilio's default opt-out keywords (STOP, STOPALL,
UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT:
https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out) and the
words the FCC's TCPA rule names as a revocation of consent when sent in reply
(stop, quit, end, revoke, opt out, cancel, unsubscribe: 47 CFR 64.1200(a)(10),
in force since 11 April 2025). On a short code, or with Twilio's opt-out
handling off, this list is the only opt-out there is, so it must hold every
one of them. **Opt-in** (START, YES, UNSTOP) and **help** (HELP, INFO) are
Twilio's defaults: an opt-in wider than Twilio's would lift our opt-out while
Twilio still blocks the number.

A message is a keyword when, reduced by ``keyword_of``, it is the whole word:

* Unicode NFKC, so compatibility forms read as the letters they show
  (full-width ``ＳＴＯＰ``, ligatures, a long s);
* case-folded;
* every space, punctuation mark, and control or format character removed, inside
  the message too: zero-width spaces and joiners (format characters) cannot hide
  a keyword, and the multi-word forms match their one-word spelling (``opt out``,
  ``Opt-Out``, ``OptOut`` and ``OPT OUT.`` are all OPTOUT; ``stop all`` is STOPALL).

Other words around a keyword still make it a plain message ("stop please", "STOP 2"),
as Twilio's own matching does (https://help.twilio.com/articles/223134027): the
keyword must be the whole message.
"""

import unicodedata

STOP_KEYWORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
)
START_KEYWORDS = frozenset({"start", "yes", "unstop"})
HELP_KEYWORDS = frozenset({"help", "info"})

# Unicode general categories dropped from a message: punctuation (P), separators
# (Z: spaces), and other (C: controls and format characters such as U+200B).
_DROPPED_CATEGORIES = frozenset("PZC")


def keyword_of(body: str) -> str:
    """``body`` reduced to the word it may be (compare with the sets above)."""
    text = unicodedata.normalize("NFKC", body).casefold()
    return "".join(
        c for c in text if not c.isspace() and unicodedata.category(c)[0] not in _DROPPED_CATEGORIES
    )
