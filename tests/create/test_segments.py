"""Segment counting at the edges Twilio bills by (GSM-7, extension table, UCS-2, emoji)."""

import pytest

from notification.values import Encoding, count_segments

EURO = "€"  # GSM-7 extension table: two septets
ZHE = "ж"  # outside GSM-7: one UTF-16 unit, forces UCS-2
EMOJI = "😀"  # outside the BMP: a surrogate pair, two UTF-16 units
GSM7_NON_ASCII = "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¡ÄÖÑÜ§¿äöñüà"  # one septet each

CASES = [
    # body, encoding, segments, characters (units), characters per segment
    ("", Encoding.GSM7, 0, 0, 160),
    ("a", Encoding.GSM7, 1, 1, 160),
    ("a" * 160, Encoding.GSM7, 1, 160, 160),
    ("a" * 161, Encoding.GSM7, 2, 161, 153),
    ("a" * 306, Encoding.GSM7, 2, 306, 153),
    ("a" * 307, Encoding.GSM7, 3, 307, 153),
    ("a" * 1600, Encoding.GSM7, 11, 1600, 153),
    # Extension characters take two septets each.
    (EURO * 80, Encoding.GSM7, 1, 160, 160),
    (EURO * 81, Encoding.GSM7, 2, 162, 153),
    ("a" * 159 + "^", Encoding.GSM7, 2, 161, 153),
    # An escape pair is never split: 152 + [€] would be 154 > 153, so € opens segment 2.
    ("a" * 152 + EURO + "a" * 152, Encoding.GSM7, 3, 306, 153),
    # GSM-7 basic characters beyond ASCII stay GSM-7.
    ("é" * 160, Encoding.GSM7, 1, 160, 160),
    (GSM7_NON_ASCII, Encoding.GSM7, 1, len(GSM7_NON_ASCII), 160),
    # One character outside GSM-7 switches the whole message to UCS-2.
    (ZHE * 70, Encoding.UCS2, 1, 70, 70),
    (ZHE * 71, Encoding.UCS2, 2, 71, 67),
    (ZHE * 134, Encoding.UCS2, 2, 134, 67),
    (ZHE * 135, Encoding.UCS2, 3, 135, 67),
    ("a" * 69 + ZHE, Encoding.UCS2, 1, 70, 70),
    ("a" * 70 + ZHE, Encoding.UCS2, 2, 71, 67),
    ("’" + "a" * 69, Encoding.UCS2, 1, 70, 70),  # a curly quote is not GSM-7
    # Emoji are two UTF-16 units.
    (EMOJI * 35, Encoding.UCS2, 1, 70, 70),
    (EMOJI * 36, Encoding.UCS2, 2, 72, 67),
    # A surrogate pair is never split: 66 + [😀] would be 68 > 67.
    (ZHE * 66 + EMOJI + ZHE * 66, Encoding.UCS2, 3, 134, 67),
]


@pytest.mark.parametrize(("body", "encoding", "segments", "characters", "per_segment"), CASES)
def test_count_segments(body, encoding, segments, characters, per_segment):
    info = count_segments(body)
    assert (info.encoding, info.segments, info.characters, info.characters_per_segment) == (
        encoding,
        segments,
        characters,
        per_segment,
    )
