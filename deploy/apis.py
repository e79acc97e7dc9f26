"""Admin REST API for models and endpoints (site admins only), mounted at /api/deploy/.

One thin view per operation; writes go through deploy.services. Endpoint tokens are
write-only: they are accepted on input and never shown back.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from caipi.core.permissions import SITE_ADMIN, can
from deploy import selectors, services
from deploy.health import health_read
from deploy.models import Endpoint, EndpointState, ModelKind

logger = logging.getLogger(__name__)


class IsSiteAdmin(BasePermission):
    """Only site administrators manage models and endpoints (``site.admin``)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return can(request.user, SITE_ADMIN)


def _validated(call: Any, **kwargs: Any) -> Any:
    try:
        return call(**kwargs)
    except DjangoValidationError as exc:
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        raise ValidationError(detail) from None


class ModelOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    served_name = serializers.CharField()
    kind = serializers.CharField()
    default_params = serializers.JSONField()
    enabled = serializers.BooleanField()
    description = serializers.CharField()


class EndpointOutput(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField(source="model.name")
    url = serializers.CharField()
    weight = serializers.IntegerField()
    state = serializers.CharField()
    has_token = serializers.SerializerMethodField()

    def get_has_token(self, endpoint: Endpoint) -> bool:
        return bool(endpoint.token)


def _endpoint_answer(endpoints: list[Endpoint]) -> list[dict[str, Any]]:
    """Endpoints with their last health snapshot (healthy, running, waiting, kv usage)."""
    health = health_read([e.id for e in endpoints])
    answer = []
    for endpoint in endpoints:
        row = dict(EndpointOutput(endpoint).data)
        snapshot = health.get(endpoint.id)
        row["health"] = None
        if snapshot is not None:
            row["health"] = {
                "healthy": snapshot.healthy,
                "running": snapshot.running,
                "waiting": snapshot.waiting,
                "kv_usage": snapshot.kv_usage,
                "queue_time": snapshot.queue_time,
                "checked_at": snapshot.checked_at,
            }
        answer.append(row)
    return answer


class ModelListCreateApi(APIView):
    permission_classes = [IsSiteAdmin]

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        served_name = serializers.CharField(max_length=200, required=False)
        kind = serializers.ChoiceField(choices=ModelKind.choices, default=ModelKind.CHAT)
        default_params = serializers.DictField(required=False)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        enabled = serializers.BooleanField(default=True)

    def get(self, request: Request) -> Response:
        return Response(ModelOutput(selectors.model_list(), many=True).data)

    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        model = _validated(services.model_create, actor=request.user, **data.validated_data)
        return Response(ModelOutput(model).data, status=status.HTTP_201_CREATED)


class EndpointListCreateApi(APIView):
    permission_classes = [IsSiteAdmin]

    class InputSerializer(serializers.Serializer):
        model = serializers.CharField()
        url = serializers.CharField(max_length=500)
        weight = serializers.IntegerField(min_value=1, default=1)
        token = serializers.CharField(required=False, allow_blank=True, default="")
        state = serializers.ChoiceField(choices=EndpointState.choices, default=EndpointState.READY)
        health_path = serializers.RegexField(r"^/\S*$", max_length=200, default="/health")

    def get(self, request: Request) -> Response:
        return Response(_endpoint_answer(list(selectors.endpoint_list())))

    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        model = selectors.model_get(name=fields.pop("model"))
        if model is None:
            raise ValidationError({"model": ["No model has this name."]})
        endpoint = _validated(services.endpoint_add, model=model, actor=request.user, **fields)
        return Response(_endpoint_answer([endpoint])[0], status=status.HTTP_201_CREATED)


class EndpointDetailApi(APIView):
    permission_classes = [IsSiteAdmin]

    class UpdateSerializer(serializers.Serializer):
        url = serializers.CharField(max_length=500, required=False)
        weight = serializers.IntegerField(min_value=1, required=False)
        token = serializers.CharField(required=False, allow_blank=True)
        state = serializers.ChoiceField(choices=EndpointState.choices, required=False)

    def get(self, request: Request, endpoint_id: int) -> Response:
        endpoint = get_object_or_404(selectors.endpoint_list(), pk=endpoint_id)
        return Response(_endpoint_answer([endpoint])[0])

    def patch(self, request: Request, endpoint_id: int) -> Response:
        endpoint = get_object_or_404(selectors.endpoint_list(), pk=endpoint_id)
        data = self.UpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = _validated(
            services.endpoint_update, endpoint=endpoint, actor=request.user, **data.validated_data
        )
        return Response(_endpoint_answer([endpoint])[0])

    def delete(self, request: Request, endpoint_id: int) -> Response:
        endpoint = get_object_or_404(Endpoint, pk=endpoint_id)
        services.endpoint_remove(endpoint=endpoint, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointDrainApi(APIView):
    permission_classes = [IsSiteAdmin]

    def post(self, request: Request, endpoint_id: int) -> Response:
        endpoint = get_object_or_404(selectors.endpoint_list(), pk=endpoint_id)
        services.endpoint_drain(endpoint=endpoint, actor=request.user)
        return Response(_endpoint_answer([endpoint])[0])
