"""Deterministic stand-ins for a model: token counting, generated text, embeddings.

Token approximation (documented contract, used consistently for ``usage``):

- A prompt is tokenized by ``tokenize``: every run of word characters is one token and
  every other non-space character is one token ("Hello, world!" -> 4 tokens). Real BPE
  tokenizers give roughly 1.3 tokens per English word, so counts here run a little low.
- A chat prompt adds ``CHAT_TOKENS_PER_MESSAGE`` per message and ``CHAT_TOKENS_PRIMING``
  once, standing in for the role markers a chat template inserts.
- A generated token is one word with its leading space; a sentence's last word carries
  its full stop. So ``completion_tokens`` equals the number of words in the answer.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from functools import lru_cache

CHAT_TOKENS_PER_MESSAGE = 3
CHAT_TOKENS_PRIMING = 3

_TOKEN_RE = re.compile(r"\w+|[^\w\s]", re.UNICODE)

_SUBJECTS = (
    "the lecture", "this concept", "the method", "the proof", "our model", "the exercise",
    "the experiment", "the algorithm", "the definition", "this chapter", "the example",
    "the theorem", "the result", "the course", "the dataset", "the argument",
)  # fmt: skip
_VERBS = (
    "explains", "shows", "suggests", "describes", "connects", "illustrates", "clarifies",
    "introduces", "compares", "supports", "summarises", "highlights", "extends", "tests",
)  # fmt: skip
_ADJECTIVES = (
    "central", "simple", "useful", "important", "general", "careful", "formal", "practical",
    "classic", "precise", "common", "surprising", "elegant", "basic", "recent", "key",
)  # fmt: skip
_OBJECTS = (
    "idea", "assumption", "structure", "pattern", "relation", "question", "principle",
    "approach", "framework", "limit", "trade-off", "notation", "step", "case", "property",
)  # fmt: skip
_TAILS = (
    "in a clear way", "for the exam", "with a small example", "from week three",
    "in the lecture notes", "step by step", "at the end", "in practice", "for most students",
    "in two lines", "without much effort", "as we saw before",
)  # fmt: skip
_OPENERS = ("In short,", "First,", "Then", "Note that", "Overall,", "For example,", "Finally,")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into the simulator's prompt tokens (see the module docstring)."""
    return _TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    """Return how many prompt tokens ``text`` counts for."""
    return len(_TOKEN_RE.findall(text))


def count_chat_tokens(contents: list[str]) -> int:
    """Return the prompt tokens of a chat whose messages have the given text contents."""
    words = sum(count_tokens(content) for content in contents)
    return words + CHAT_TOKENS_PER_MESSAGE * len(contents) + CHAT_TOKENS_PRIMING


def _stable_int(*parts: object) -> int:
    # hash() is salted per process; answers must be identical across restarts.
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _sentence(rng: random.Random) -> list[str]:
    words: list[str] = []
    if rng.random() < 0.3:
        words.extend(rng.choice(_OPENERS).split())
    words.extend(rng.choice(_SUBJECTS).split())
    words.append(rng.choice(_VERBS))
    words.extend(("a", rng.choice(_ADJECTIVES), rng.choice(_OBJECTS)))
    if rng.random() < 0.6:
        words.extend(rng.choice(_TAILS).split())
    words[0] = words[0][0].upper() + words[0][1:]
    words[-1] += "."
    return words


@lru_cache(maxsize=4096)
def generate_pieces(seed: int, prompt: str, count: int) -> tuple[str, ...]:
    """Return ``count`` generated tokens (word strings) for ``prompt``.

    Deterministic for a given (seed, prompt, count); the first piece has no leading
    space, every later piece has one, so ``"".join(pieces)`` reads as English.
    Cached because benchmarks send the same prompt many times.
    """
    rng = random.Random(_stable_int(seed, prompt))
    words: list[str] = []
    while len(words) < count:
        words.extend(_sentence(rng))
    del words[count:]
    return tuple(word if i == 0 else " " + word for i, word in enumerate(words))


def apply_stop(
    pieces: tuple[str, ...], stop: tuple[str, ...]
) -> tuple[tuple[str, ...], str | None]:
    """Cut ``pieces`` before the earliest stop string, as vLLM does.

    Returns the kept pieces (the last one possibly shortened) and the stop string that
    matched, or ``None`` when no stop string occurs.
    """
    if not stop:
        return pieces, None
    text = "".join(pieces)
    hits = [(index, s) for s in stop if s and (index := text.find(s)) >= 0]
    if not hits:
        return pieces, None
    cut, matched = min(hits)
    kept: list[str] = []
    used = 0
    for piece in pieces:
        if used >= cut:
            break
        kept.append(piece[: cut - used])
        used += len(piece)
    return tuple(kept), matched


@lru_cache(maxsize=8192)
def _token_vector(seed: int, token: str, dim: int) -> tuple[float, ...]:
    rng = random.Random(_stable_int(seed, "embedding", token))
    return tuple(rng.gauss(0.0, 1.0) for _ in range(dim))


def embed(text: str, dim: int, seed: int = 0) -> list[float]:
    """Return a unit vector of length ``dim`` for ``text``.

    The vector is the normalised sum of one fixed pseudo-random vector per lower-cased
    token, so equal texts give equal vectors and texts sharing words point in similar
    directions (cosine similarity grows with the share of common tokens).
    """
    tokens = [token.lower() for token in tokenize(text)] or [""]
    total = [0.0] * dim
    for token in tokens:
        total = [a + b for a, b in zip(total, _token_vector(seed, token, dim), strict=True)]
    norm = math.sqrt(sum(value * value for value in total)) or 1.0
    return [value / norm for value in total]


_WORD_RE = re.compile(r"\w+")


def overlap_score(query: str, document: str) -> float:
    """A reranker's stand-in: the share of the query's distinct words (lower-cased) that the
    document contains, 0..1. Deterministic, so reranking can be tested without a model."""
    wanted = {word.lower() for word in _WORD_RE.findall(query)}
    if not wanted:
        return 0.0
    present = {word.lower() for word in _WORD_RE.findall(document)}
    return len(wanted & present) / len(wanted)
