"""How a stream's usage is read (the engine's usage in the last chunk carrying one, else
counted) and stripped where the client did not ask for it."""

import orjson

from caipi.gateway.stream_usage import usage_counted, usage_from_tail, without_usage


def test_the_usage_chunk_at_the_end_of_a_stream_is_read():
    tail = (
        b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n'
        b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}\n\n'
        b"data: [DONE]\n\n"
    )
    assert usage_from_tail(tail) == {"prompt_tokens": 7, "completion_tokens": 3}


def test_a_stream_without_a_usage_chunk_has_none_to_read():
    assert usage_from_tail(b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n') is None


def test_without_a_usage_chunk_each_streamed_token_is_counted():
    # role event, five token events, [DONE]: as llama.cpp's server streams, with no usage
    assert usage_counted(7) == {"completion_tokens": 5}


def test_a_stream_that_sent_nothing_is_not_counted():
    assert usage_counted(0) is None


CONTINUOUS = (
    b'data: {"id":"c","choices":[{"index":0,"delta":{"content":" a b c"}}],'
    b'"usage":{"prompt_tokens":7,"total_tokens":10,"completion_tokens":3}}\n\n'
    b'data: {"id":"c","choices":[{"index":0,"delta":{"content":" d e"}}],'
    b'"usage":{"prompt_tokens":7,"total_tokens":12,"completion_tokens":5,'
    b'"prompt_tokens_details":{"cached_tokens":0}}}\n\n'
)
FINAL = (
    b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":7,"total_tokens":12,'
    b'"completion_tokens":5}}\n\ndata: [DONE]\n\n'
)


def test_with_usage_in_every_chunk_the_last_complete_one_is_read():
    cut_off = CONTINUOUS + b'data: {"id":"c","choices":[],"usage":{"prompt_tok'
    assert usage_from_tail(cut_off)["completion_tokens"] == 5


def test_per_chunk_usage_the_client_did_not_ask_for_is_stripped():
    stripped = without_usage(CONTINUOUS + FINAL)
    events = [orjson.loads(line[6:]) for line in stripped.split(b"\n\n")[:3]]
    assert [("usage" in event) for event in events] == [False, False, True]
    assert events[1]["choices"][0]["delta"]["content"] == " d e"
    assert stripped.endswith(b"data: [DONE]\n\n")


def test_a_usage_object_split_across_two_reads_is_left_whole():
    head = CONTINUOUS[:-40]
    assert without_usage(head).endswith(head[-40:])
    assert without_usage(b'data: {"choices":[]}\n\n') == b'data: {"choices":[]}\n\n'
