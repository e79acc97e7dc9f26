"""REST API of the prompts app (session-authenticated, under ``/api/prompts/``)."""
