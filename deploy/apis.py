"""Admin REST API for models, endpoints and deployment specs (site admins only), mounted at
/api/deploy/; and the Prometheus service discovery of the engines (its own bearer token).

One thin view per operation; writes go through deploy.services. Endpoint tokens are
write-only: they are accepted on input and never shown back.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
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
from deploy.models import Deployment, Endpoint, EndpointState, ModelKind
from deploy.specs import spec_parse

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


# --- deployment specs -------------------------------------------------------------------


def _deployment_answer(deployment: Deployment) -> dict[str, Any]:
    """A deployment as its spec document plus its live instances and recent decisions."""
    from deploy.reconciler import spec_of

    answer = spec_of(deployment).as_document()
    answer["instances"] = [
        {
            "id": i.pk,
            "state": i.state,
            "url": i.url,
            "gpus": i.gpus,
            "endpoint": i.endpoint_id,
            "started_at": i.started_at,
            "ready_at": i.ready_at,
            "error": i.error,
        }
        for i in selectors.instance_list(deployment=deployment)[:20]
    ]
    answer["decisions"] = [
        {"at": d.at, "current": d.current, "desired": d.desired, "reason": d.reason}
        for d in deployment.decisions.all()[:20]
    ]
    return answer


def _apply(document: Any, actor: Any) -> Deployment:
    try:
        return services.deployment_apply(spec=spec_parse(document), actor=actor)
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict) from None


class DeploymentListApplyApi(APIView):
    """GET: every deployment with its instances. POST: apply one spec document (the same
    shape as one entry of a ``deploy apply`` YAML file); 400 names each bad field."""

    permission_classes = [IsSiteAdmin]

    def get(self, request: Request) -> Response:
        return Response([_deployment_answer(d) for d in selectors.deployment_list()])

    def post(self, request: Request) -> Response:
        deployment = _apply(request.data, request.user)
        return Response(_deployment_answer(deployment), status=status.HTTP_201_CREATED)


class DeploymentDetailApi(APIView):
    """GET, PUT (the whole spec; its name must match) or DELETE one model's deployment."""

    permission_classes = [IsSiteAdmin]

    def get(self, request: Request, name: str) -> Response:
        deployment = get_object_or_404(selectors.deployment_list(), model__name=name)
        return Response(_deployment_answer(deployment))

    def put(self, request: Request, name: str) -> Response:
        get_object_or_404(selectors.deployment_list(), model__name=name)
        document = request.data
        if not isinstance(document, dict) or document.get("name", name) != name:
            raise ValidationError({"name": ["must be the name in the URL"]})
        deployment = _apply({**document, "name": name}, request.user)
        return Response(_deployment_answer(deployment))

    def delete(self, request: Request, name: str) -> Response:
        deployment = get_object_or_404(selectors.deployment_list(), model__name=name)
        if selectors.instance_list(deployment=deployment, live_only=True).exists():
            raise ValidationError(
                {"instances": ["still running: disable the deployment and let them drain first"]}
            )
        services.deployment_remove(deployment=deployment, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


def prometheus_sd(request: HttpRequest) -> HttpResponse:
    """Prometheus HTTP service discovery: every live engine instance as a scrape target,
    labelled with its model, deployment, instance and launcher. Answers only a request
    bearing ``CAIPI_PROMETHEUS_SD_TOKEN`` (404 while that is unset, 401 otherwise)."""
    expected = settings.DEPLOY_PROMETHEUS_SD_TOKEN
    if not expected:
        raise Http404("Prometheus service discovery is off (CAIPI_PROMETHEUS_SD_TOKEN unset)")
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        response = JsonResponse({"detail": "a valid bearer token is required"}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="caipi-sd"'
        return response
    groups = []
    for instance in selectors.live_instance_targets():
        parts = urlsplit(instance.url)
        groups.append(
            {
                "targets": [parts.netloc],
                "labels": {
                    "__scheme__": parts.scheme,
                    "__metrics_path__": "/metrics",
                    "model": instance.deployment.model.name,
                    "deployment": str(instance.deployment_id),
                    "instance_id": str(instance.pk),
                    "launcher": instance.launcher,
                    "state": instance.state,
                },
            }
        )
    return JsonResponse(groups, safe=False)
