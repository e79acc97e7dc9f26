"""OpenAPI schema hooks (drf-spectacular): the schema documents the API under /api/ only."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema


def only_api_paths(endpoints: list[tuple[str, Any, str, Any]], **kwargs: Any) -> list[Any]:
    """Keep the endpoints under /api/ (DRF views elsewhere, e.g. /lti/api/, are LTI's)."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith("/api/")]


class CaipiAutoSchema(AutoSchema):
    """Names nested serializers after their view: CAIPI's views nest ``Input``/``Output``
    classes (one per view), which would otherwise all be called "Input" in the schema."""

    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        cls = serializer.__class__
        name = super().get_serializer_name(serializer, direction)
        outer = cls.__qualname__.split(".")[0]
        if "." in cls.__qualname__ and not name.startswith(outer):
            return outer + name
        return name


_STREAM = {
    "description": "The answer as server-sent events: OpenAI chat completion chunks, then "
    '`data: {"caipi": {"html", "final", "run_id"}}` events with the answer rendered as '
    "sanitized HTML, then `data: [DONE]`.",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}
_ERROR = {
    "description": "Refused, in OpenAI's error shape",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"error": {"type": "object", "additionalProperties": True}},
            }
        }
    },
}
_RUN_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "inputs": {"type": "object", "description": "The template's inputs."},
                    "history": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "role": {"type": "string", "enum": ["user", "assistant"]},
                                "content": {"type": "string"},
                            },
                        },
                    },
                    "follow_up": {"type": "string", "maxLength": 4000},
                },
            }
        }
    },
}


def _streamed(summary: str, params: list[str], tag: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": summary.lower().replace(" ", "_").replace("'", ""),
            "summary": summary,
            "tags": [tag],
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}
                for name in params
            ],
            "requestBody": _RUN_BODY,
            "responses": {
                "200": _STREAM,
                **{code: _ERROR for code in ("400", "401", "403", "404", "429", "503")},
            },
        }
    }


def streaming_endpoints(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Add the API's streaming endpoints (plain async views, invisible to DRF) to the schema."""
    paths = result.setdefault("paths", {})
    paths["/api/prompts/templates/{template_id}/run/"] = _streamed(
        "Run a published template", ["template_id"], "prompts"
    )
    paths["/api/prompts/templates/{template_id}/versions/{version_id}/try/"] = _streamed(
        "Try a version as a sample student", ["template_id", "version_id"], "prompts"
    )
    paths["/api/prompts/courses/{course_id}/usage/"] = {
        "get": {
            "operationId": "prompts_course_usage",
            "summary": "Runs, students reached and tokens per template (counts only)",
            "tags": ["prompts"],
            "parameters": [
                {"name": "course_id", "in": "path", "required": True, "schema": {"type": "integer"}}
            ],
            "responses": {
                "200": {
                    "description": "Usage per template",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "403": _ERROR,
            },
        }
    }
    return result
