"""A simulated vLLM OpenAI-compatible server for tests, benchmarks and the GPU-less demo.

``python -m deploy.simulator --port 8001 --model sim-model`` serves ``/v1/models``,
``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``, ``/health`` and
``/metrics`` with vLLM's request rules, response and SSE shapes and metric names.
Timing (time to first token, time per token, a slot limit with a waiting queue, batch
slowdown) and failures (500s, hangs, crash after N requests, slow startup) are set by
options; see ``python -m deploy.simulator --help``.

Modules: ``config`` (options), ``engine`` (slots, queue, timing, faults), ``text``
(deterministic words, token counts, embeddings), ``protocol`` (validation, errors),
``responses`` (JSON and SSE bytes), ``metrics`` (Prometheus), ``httpserver`` (HTTP/1.1),
``api`` (routes), ``loadcheck`` (measures the simulator under many streams).
"""
