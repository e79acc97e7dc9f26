"""How a finished call's usage is read: from the engine's usage chunk, else counted."""

from caipi.gateway.relay import usage_counted, usage_from_tail


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
