"""REST API of governance: one thin view per operation, session-authenticated.

Refusals come from ``core.permissions`` and the services; the core exception handler turns
them into ``{"error": {...}}`` with the right status.
"""

from __future__ import annotations

import logging
from typing import Any

from django.shortcuts import get_object_or_404
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from caipi.core.auth import request_user
from caipi.core.models import Course
from caipi.core.permissions import COURSE_VIEW, can, require
from caipi.governance import selectors, services
from caipi.governance.authentication import request_principal
from caipi.governance.models import (
    ApiKey,
    CourseSettings,
    LimitMetric,
    LimitScope,
    LimitWindow,
)
from caipi.governance.permissions import (
    COURSE_MANAGE_SETTINGS,
    COURSE_SET_BUDGET,
    COURSE_SETTING_ACTIONS,
    COURSE_VIEW_USAGE,
)
from caipi.governance.policy import PolicyAccepted
from caipi.governance.principal import principal_for_user

logger = logging.getLogger(__name__)


class GovernedAPIView(APIView):
    permission_classes = [IsAuthenticated, PolicyAccepted]


class QuotaMeApi(GovernedAPIView):
    """GET /api/quota/me[?course=<id>]: every limit the caller draws on, with what remains."""

    def get(self, request: Request) -> Response:
        raw = request.query_params.get("course")
        course_id = int(raw) if raw and raw.isdigit() else None
        if course_id is not None:
            require(request.user, COURSE_VIEW, get_object_or_404(Course, pk=course_id))
        principal = request_principal(request)  # a key's own limits count for its calls
        if principal is None or course_id is not None:
            principal = principal_for_user(user_id=request_user(request).pk, course_id=course_id)
        return Response({"limits": selectors.quota_overview(principal=principal)})


class UsageMeApi(GovernedAPIView):
    """GET /api/usage/me[?days=30]: the caller's own calls and tokens."""

    def get(self, request: Request) -> Response:
        days = request.query_params.get("days", "30")
        days_int = min(max(int(days), 1), 366) if days.isdigit() else 30
        return Response(selectors.usage_for_user(user=request_user(request), days=days_int))


class ApiKeyOutput(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "allowed_models",
            "created_at",
            "expires_at",
            "revoked_at",
        ]


class ApiKeyListCreateApi(GovernedAPIView):
    """GET /api/keys: the caller's keys. POST: create one; the key is in the answer, once."""

    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=100, required=False, default="")
        expires_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)
        models = serializers.ListField(child=serializers.CharField(max_length=200), required=False)

    def get(self, request: Request) -> Response:
        return Response(
            {
                "keys": ApiKeyOutput(
                    selectors.apikey_list(user=request_user(request)), many=True
                ).data
            }
        )

    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        key, raw_key = services.apikey_create(
            user=request_user(request), actor=request_user(request), **data.validated_data
        )
        return Response({**ApiKeyOutput(key).data, "key": raw_key}, status=201)


class ApiKeyRevokeApi(GovernedAPIView):
    """POST /api/keys/<id>/revoke: revoke one of the caller's keys (404 for others' keys)."""

    def post(self, request: Request, key_id: int) -> Response:
        key = get_object_or_404(ApiKey, pk=key_id, user=request.user)
        return Response(
            ApiKeyOutput(services.apikey_revoke(key=key, actor=request_user(request))).data
        )


class CourseBudgetApi(GovernedAPIView):
    """GET/PUT /api/courses/<id>/budget: the course's limits; set the staff budget."""

    class Input(serializers.Serializer):
        scope = serializers.ChoiceField(choices=[LimitScope.COURSE, LimitScope.COURSE_MEMBER])
        metric = serializers.ChoiceField(choices=LimitMetric.choices)
        window = serializers.ChoiceField(choices=LimitWindow.choices)
        size = serializers.IntegerField(min_value=0, max_value=10**12)

    def get(self, request: Request, course_id: int) -> Response:
        course = get_object_or_404(Course, pk=course_id)
        require(request.user, COURSE_VIEW_USAGE, course)
        limits = selectors.course_limits(course=course)
        return Response({"limits": [_limit_json(limit) for limit in limits]})

    def put(self, request: Request, course_id: int) -> Response:
        course = get_object_or_404(Course, pk=course_id)
        require(request.user, COURSE_SET_BUDGET, course)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        limit = services.course_budget_set(
            actor=request_user(request), course=course, **data.validated_data
        )
        return Response(_limit_json(limit))


def _limit_json(limit) -> dict:
    return {
        "id": limit.pk,
        "label": limit.label,
        "scope": limit.scope,
        "metric": limit.metric,
        "window": limit.window,
        "size": limit.size,
        "managed_by": limit.managed_by,
    }


class CourseSettingsApi(GovernedAPIView):
    """GET/PATCH /api/courses/<id>/settings: conversation history, retention, exempt roles.

    History and retention are the instructors'; ``exempt_roles`` (whose calls skip the
    course budgets) is the administrator's: a PATCH of it by anyone else is a 403 naming
    the field. GET says which fields the caller may change (``editable``).
    """

    FIELDS = ("keep_conversations", "retention_days", "exempt_roles")

    class Input(serializers.Serializer):
        keep_conversations = serializers.BooleanField(required=False)
        retention_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)
        exempt_roles = serializers.ListField(
            child=serializers.ChoiceField(choices=["learner", "teaching_assistant", "instructor"]),
            required=False,
        )

    def get(self, request: Request, course_id: int) -> Response:
        course = get_object_or_404(Course, pk=course_id)
        require(request.user, COURSE_MANAGE_SETTINGS, course)
        return Response(self._answer(request, selectors.course_settings(course=course)))

    def patch(self, request: Request, course_id: int) -> Response:
        course = get_object_or_404(Course, pk=course_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        row = services.course_settings_update(
            actor=request_user(request), course=course, **data.validated_data
        )
        return Response(self._answer(request, row))

    def _answer(self, request: Request, row: CourseSettings) -> dict[str, Any]:
        editable = [
            name
            for name in self.FIELDS
            if can(request.user, COURSE_SETTING_ACTIONS[name], row.course)
        ]
        return {**{name: getattr(row, name) for name in self.FIELDS}, "editable": editable}


class PolicyApi(APIView):
    """GET /api/policy: the current policy and whether the caller accepted it. POST accepts."""

    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        policy = selectors.policy_current()
        return Response(
            {
                "version": policy.version if policy else None,
                "text": policy.text if policy else "",
                "accepted": selectors.policy_accepted(user=request_user(request)),
            }
        )

    def post(self, request: Request) -> Response:
        services.policy_accept(user=request_user(request), channel="web")
        return self.get(request)
