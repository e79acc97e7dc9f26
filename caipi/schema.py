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
