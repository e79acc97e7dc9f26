"""Raw server-sent-event reading: split bytes into events, spot content chunks.

The load generator must stay cheaper than the systems it measures, so it never parses
chunk JSON: an event carries content when its bytes hold a non-empty ``"content":"``
(chat) or ``"text":"`` (completions) value. OpenAI-shaped servers (vLLM, CAIPI,
LiteLLM) write compact or ``", "``-spaced JSON; both spellings are recognised.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

_CONTENT_MARKS = (b'"content":"', b'"content": "', b'"text":"', b'"text": "')
DONE = b"[DONE]"


def split_events(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Split a byte buffer into complete SSE events and the unfinished rest.

    Events end with a blank line; ``\\r\\n`` line ends are accepted. Returns the events
    (without their terminating blank line) and the bytes still waiting for more data.
    """
    if b"\r" in buffer:
        buffer = buffer.replace(b"\r\n", b"\n")
    parts = buffer.split(b"\n\n")
    return [part for part in parts[:-1] if part], parts[-1]


def event_data(event: bytes) -> bytes:
    """Join the ``data:`` lines of one event (comments and other fields dropped)."""
    lines = [line for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(line[5:].lstrip(b" ") for line in lines)


def has_content(data: bytes) -> bool:
    """True when an event's data carries a non-empty content or text delta."""
    for mark in _CONTENT_MARKS:
        start = data.find(mark)
        while start >= 0:
            end = start + len(mark)
            if end < len(data) and data[end : end + 1] != b'"':
                return True
            start = data.find(mark, end)
    return False


def is_error(data: bytes) -> bool:
    """True when an event carries an OpenAI-shaped error object."""
    return data.startswith(b'{"error"') or data.startswith(b'{"object":"error"')


class StreamTimer:
    """Accumulates arrival times of content events of one streamed response.

    Feed it each network read with its arrival time (``perf_counter`` seconds);
    afterwards ``content_times`` holds one timestamp per content event, ``done`` tells
    whether ``[DONE]`` arrived and ``error`` whether an error event did.
    """

    __slots__ = ("_rest", "content_times", "done", "error")

    def __init__(self) -> None:
        self._rest = b""
        self.content_times: list[float] = []
        self.done = False
        self.error = False

    def feed(self, data: bytes, now: float) -> None:
        """Account one read of raw bytes that arrived at ``now``."""
        events, self._rest = split_events(self._rest + data)
        for payload in _payloads(events):
            if payload == DONE:
                self.done = True
            elif is_error(payload):
                self.error = True
            elif has_content(payload):
                self.content_times.append(now)

    def gaps(self) -> list[float]:
        """Times between consecutive content events (inter-chunk latency)."""
        times = self.content_times
        return [later - earlier for earlier, later in itertools.pairwise(times)]


def _payloads(events: list[bytes]) -> Iterator[bytes]:
    for event in events:
        data = event_data(event)
        if data:
            yield data
