"""SMS segment counting, by the GSM-7 and UCS-2 rules Twilio bills and paces by.

Batches, Twilio's per-sender queue and the compose counter in the frontend are
all measured in segments, not messages, so this must match Twilio exactly:

* GSM-7: 160 septets in a single segment, 153 per segment once split.
  Extension-table characters take two septets and an escape pair is never
  split across segments.
* UCS-2 (any character outside GSM-7): 70 UTF-16 code units in one segment,
  67 per segment once split; an emoji is two code units and a surrogate pair
  is never split.
"""

from dataclasses import dataclass
from enum import StrEnum

MAX_BODY_CHARACTERS = 1600

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


class Encoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """How a body travels: its encoding, its segment count and its length in units.

    ``characters`` counts encoding units (septets for GSM-7, UTF-16 code units
    for UCS-2), which is what the per-segment limits are measured in.
    """

    encoding: Encoding
    segments: int
    characters: int
    characters_per_segment: int


def is_gsm7(body: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in body)


def _unit_widths(body: str, encoding: Encoding) -> list[int]:
    if encoding is Encoding.GSM7:
        return [2 if ch in GSM7_EXTENSION else 1 for ch in body]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in body]


def _pack(widths: list[int], per_segment: int) -> int:
    """Greedy packing that never splits a two-unit character across segments."""
    segments, used = 1, 0
    for width in widths:
        if used + width > per_segment:
            segments += 1
            used = 0
        used += width
    return segments


def segment_fields(body: str) -> dict[str, int | str]:
    """The ``segments`` and ``encoding`` columns of an SMS row with this body.

    Every writer of those columns (save, bulk creation, the admin, the send
    job's recount) takes them from here, so a row never stores a count made
    by other rules than the one the send job's budget uses.
    """
    info = count_segments(body)
    return {"segments": info.segments, "encoding": info.encoding.value}


def count_segments(body: str) -> SegmentInfo:
    encoding = Encoding.GSM7 if is_gsm7(body) else Encoding.UCS2
    single, multi = (
        (GSM7_SINGLE, GSM7_MULTI) if encoding is Encoding.GSM7 else (UCS2_SINGLE, UCS2_MULTI)
    )
    widths = _unit_widths(body, encoding)
    units = sum(widths)
    if units == 0:
        return SegmentInfo(encoding, 0, 0, single)
    if units <= single:
        return SegmentInfo(encoding, 1, units, single)
    return SegmentInfo(encoding, _pack(widths, multi), units, multi)
