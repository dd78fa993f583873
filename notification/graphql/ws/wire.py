"""A status message written to a websocket as ready-made frame bytes (the direct lane's last step).

Profiled at 10,000 subscribers of one notification, half of the direct lane's pass
was each socket's one ``transport.write`` and about a quarter the rest of uvicorn's
``send`` around it: the ASGI message dict, the ``send`` coroutine and its
``writable`` event, websockets' ``send_text``/``send_frame``/``Frame.serialize``
and ``data_to_send`` (README, "Profiling notes"). None of that depends on the
socket when the frame is the same: an unmasked server text frame is the same bytes
on every socket with no extension negotiated (RFC 6455 section 5.2), so the frame
is built once per message text (``frame_of``, with websockets' own ``Frame.serialize``) and
``Wire.write`` hands it to the socket's transport.

Only where that is exactly what uvicorn would have done (``wire_of``): the ASGI
``send`` is uvicorn's sans-I/O websocket protocol's own (no middleware wraps it),
and no extension was negotiated (permessage-deflate compresses each socket's
messages with its own context: its bytes cannot be shared). ``Wire.write``
writes only while uvicorn's ``send`` would write at once: the connection open,
no close sent, nothing of websockets' left unsent, and the transport not paused.
Otherwise it returns False and the lane uses ``send`` as before, so a paused
socket (a client that stops reading) still waits in ``send`` and its later
messages queue towards ``too_slow``, and a closed one raises as before.
"""

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from notification.graphql.ws.frames import message_text

#: uvicorn's sans-I/O websocket protocol class, None without uvicorn or websockets (both
#: come with the project's server, not with the app: another server keeps ``send``).
_SANS_IO: Any = None
try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from websockets.frames import Frame, Opcode
    from websockets.protocol import State
except ImportError:  # pragma: no cover - the project's own server has both
    pass
else:
    _SANS_IO = WebSocketsSansIOProtocol

#: Message texts whose frames are kept (subscribers of one change follow each other in
#: ``StatusListeners.deliver``; a few selections may interleave).
_TEXTS_KEPT = 16
#: Frames kept per text (one per distinct operation id: the rest are built each time).
_FRAMES_PER_TEXT = 64


class Wire:
    """Writes frame bytes to one uvicorn websocket's transport when ``send`` would write
    them at once (see the module); False means use ``send``."""

    __slots__ = ("_connection", "_protocol")

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol
        self._connection = protocol.conn

    def write(self, frame: bytes) -> bool:
        protocol, connection = self._protocol, self._connection
        if (
            protocol.close_sent
            or protocol.disconnected
            or not protocol.writable.is_set()
            or connection.state is not State.OPEN
            or connection.expect_continuation_frame
            or connection.writes
            or protocol.transport.is_closing()
        ):
            return False
        protocol.transport.write(frame)
        return True


def wire_of(send: Callable[..., Any]) -> Wire | None:
    """A ``Wire`` for an accepted socket whose ASGI ``send`` is uvicorn's sans-I/O
    protocol's own and negotiated no extension; None: always use ``send``."""
    protocol: Any = getattr(send, "__self__", None)
    if _SANS_IO is None or type(protocol) is not _SANS_IO:
        return None
    if getattr(send, "__func__", None) is not _SANS_IO.send:
        return None
    connection = protocol.conn
    if not protocol.handshake_complete or protocol.initial_response is not None:
        return None
    if connection.extensions or connection.debug:  # compressed, or frames logged one by one
        return None
    return Wire(protocol)


_frames: "OrderedDict[int, tuple[str, dict[str, bytes]]]" = OrderedDict()


def frame_of(head: str, data: str) -> bytes:
    """The unmasked text frame of ``frames.message_text(head, data)``, built once per
    (``data`` object, ``head``): every subscriber of a change shares its ``data`` string
    (``frames.event_data``), and most share their operation id too."""
    entry = _frames.get(id(data))
    if entry is None or entry[0] is not data:
        # Keeping ``data`` in the entry keeps its id from being reused meanwhile.
        entry = _frames[id(data)] = (data, {})
        if len(_frames) > _TEXTS_KEPT:
            _frames.popitem(last=False)
    frames = entry[1]
    frame = frames.get(head)
    if frame is None:
        text = message_text(head, data).encode()
        frame = Frame(Opcode.TEXT, text).serialize(mask=False, extensions=[])
        if len(frames) < _FRAMES_PER_TEXT:
            frames[head] = frame
    return frame
