"""The country allow-list (``SMS_ALLOWED_COUNTRIES``).

SMS pumping ("artificially inflated traffic") makes a sender pay for messages to
number ranges an attacker profits from, usually in a few countries far from the
business's own; Twilio's Geo Permissions stop it per account, invisibly to the
app (https://www.twilio.com/docs/messaging/guides/sms-geo-permissions). The app's
own list refuses such numbers where the client can see why: at create time as a
field error, and at send time (for rows made with the ORM or before the setting
changed) as a failure without any request to Twilio.

The country is libphonenumber's region of the number (ISO 3166 alpha-2), so
``+1 416`` is ``CA``, not ``US``: a North American business that texts Canada
lists both.
"""

# The rule itself lives in ``notification.phone`` (the model's validators need it and
# sit below the guardrails); these are its names for the send-time guardrails.
from notification.phone import ALL_COUNTRIES, allowed_countries, country_of
from notification.phone import COUNTRY_CODE as CODE
from notification.phone import check_allowed_country as check_allowed
from notification.phone import country_refusal as refusal

__all__ = ["ALL_COUNTRIES", "CODE", "allowed_countries", "check_allowed", "country_of", "refusal"]
