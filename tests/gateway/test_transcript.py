"""The answer on the side of a stream: collected text, and Markdown rendered safely as HTML
events (what the course assistant and the run page show)."""

from __future__ import annotations

import orjson

from caipi.gateway.transcript import with_answer_html


def _sse(*texts: str) -> list[bytes]:
    chunks = [
        b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": {"content": text}}]}) + b"\n\n"
        for text in texts
    ]
    return [*chunks, b"data: [DONE]\n\n"]


async def _collect(chunks, **kwargs) -> list[bytes]:
    async def source():
        for chunk in chunks:
            yield chunk

    return [part async for part in with_answer_html(source(), **kwargs)]


def _final_html(parts: list[bytes]) -> dict:
    events = [orjson.loads(p[6:]) for p in parts if p.startswith(b'data: {"caipi"')]
    assert events and events[-1]["caipi"]["final"] is True
    return events[-1]["caipi"]


async def test_the_stream_passes_through_unchanged_with_the_rendered_answer_after_it():
    chunks = _sse("Two points:\n\n", "* first\n", "* **second**\n")
    parts = await _collect(chunks)
    assert [p for p in parts if not p.startswith(b'data: {"caipi"')] == chunks
    html = _final_html(parts)["html"]
    assert "<ul>" in html and "<li>first</li>" in html and "<strong>second</strong>" in html
    assert "* first" not in html


async def test_html_and_script_in_an_answer_stay_inert():
    parts = await _collect(_sse("<script>alert(1)</script> and <img src=x onerror=alert(1)>"))
    html = _final_html(parts)["html"]
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&lt;img" in html


async def test_what_finish_returns_goes_into_the_final_event():
    seen = []

    async def finish(answer: str) -> dict:
        seen.append(answer)
        return {"run_id": 7}

    parts = await _collect(_sse("Hello ", "world"), finish=finish)
    assert seen == ["Hello world"] and _final_html(parts)["run_id"] == 7
