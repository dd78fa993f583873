"""``signature_matches`` accepts exactly what the SDK's ``RequestValidator.validate`` accepts.

It stands in for the SDK's check (building the form's string once for several
URLs), so it must agree with it on every form, URL and signature: signatures made
by the SDK for any of the URLs, with or without the port, for the same form or a
changed one, and forged ones. A release of the SDK that changes its rule fails here.
"""

from urllib.parse import urlencode

from django.http import QueryDict
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from notification.backends.twilio_signature import signature_matches

TOKEN = "12345678901234567890123456789012"

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
names = st.sampled_from(["MessageSid", "MessageStatus", "To", "From", "ErrorCode", "a", "b"])
forms = st.lists(st.tuples(st.one_of(names, text), text), max_size=8)
hosts = st.sampled_from(
    ["https://example.com", "https://example.com:443", "http://example.com:8000", "http://h"]
)
paths = st.sampled_from(["/twilio/status/", "/twilio/status/?sms=7", "/s?x=1&bodySHA256=ab"])


def query_dict(pairs: list[tuple[str, str]]) -> QueryDict:
    return QueryDict(urlencode(pairs, encoding="utf-8"), encoding="utf-8")


def validate_like_the_sdk(urls: list[str], params: QueryDict, signature: str) -> bool:
    validator = RequestValidator(TOKEN)
    return any(validator.validate(url, params, signature) for url in urls)


@settings(max_examples=300, deadline=None)
@given(
    form=forms,
    signed_form=forms,
    host=hosts,
    path=paths,
    fragment=st.sampled_from(["", "#rc=3&rp=ct,5xx"]),
    signer=st.sampled_from(["first", "second", "other", "garbage"]),
)
def test_it_accepts_and_refuses_what_the_sdk_does(
    form, signed_form, host, path, fragment, signer
) -> None:
    urls = [host + path] + ([host + path + fragment] if fragment else [])
    params = query_dict(form)
    signed_url = {
        "first": urls[0],
        "second": urls[-1],
        "other": "https://elsewhere.example" + path,
    }.get(signer)
    signature = (
        RequestValidator(TOKEN).compute_signature(signed_url, query_dict(signed_form))
        if signed_url
        else "bm90IGEgc2lnbmF0dXJl"
    )
    assert signature_matches(TOKEN, urls, params, signature) == validate_like_the_sdk(
        urls, params, signature
    )


def test_a_signature_for_the_url_with_the_default_port_is_accepted_without_it() -> None:
    params = query_dict([("MessageStatus", "delivered"), ("MessageSid", "SM" + "a" * 32)])
    signature = RequestValidator(TOKEN).compute_signature("https://example.com:443/s/", params)
    assert signature_matches(TOKEN, ["https://example.com/s/"], params, signature)
    assert not signature_matches("0" * 32, ["https://example.com/s/"], params, signature)


def test_repeated_and_duplicate_values_are_signed_as_the_sdk_signs_them() -> None:
    params = query_dict([("b", "2"), ("a", "z"), ("a", "y"), ("a", "y")])
    signature = RequestValidator(TOKEN).compute_signature("https://example.com/s/", params)
    assert signature_matches(TOKEN, ["https://example.com/s/"], params, signature)
    assert not signature_matches(TOKEN, ["https://example.com/s/"], query_dict([]), signature)
