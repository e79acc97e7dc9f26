"""JSON API of the LTI tool: roster sync on demand, score posting. One view per operation."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from caipi.core.errors import NotFound
from caipi.core.models import Course, User
from caipi.core.permissions import require
from lms_connectors import selectors, services
from lms_connectors.models import LtiResourceLink
from lms_connectors.permissions import COURSE_MANAGE_LMS_LINK


class RosterSyncApi(APIView):
    """POST /lti/api/courses/<id>/roster-sync/ — fetch the LMS roster now (teachers)."""

    class OutputSerializer(serializers.Serializer):
        created = serializers.IntegerField()
        updated = serializers.IntegerField()
        removed = serializers.IntegerField()

    def post(self, request: Request, course_id: int) -> Response:
        course = get_object_or_404(Course, pk=course_id)
        require(request.user, COURSE_MANAGE_LMS_LINK, course)
        context = selectors.context_for_course(course=course)
        if context is None or not context.memberships_url:
            raise NotFound("This course has no roster service from an LMS.")
        result = services.roster_sync(context=context)
        return Response(self.OutputSerializer(result).data)


class ScorePostApi(APIView):
    """POST /lti/api/resource-links/<id>/scores/ — send a user's score to the LMS (teachers)."""

    class InputSerializer(serializers.Serializer):
        user_id = serializers.IntegerField()
        score_given = serializers.FloatField(min_value=0)
        score_maximum = serializers.FloatField(min_value=0.000001)
        comment = serializers.CharField(required=False, allow_blank=True, max_length=1000)

    def post(self, request: Request, link_id: int) -> Response:
        link = get_object_or_404(
            LtiResourceLink.objects.select_related("context__platform", "context__course"),
            pk=link_id,
        )
        require(request.user, COURSE_MANAGE_LMS_LINK, link.context.course)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        student = User.objects.filter(
            pk=data.validated_data["user_id"], memberships__course=link.context.course
        ).first()
        if student is None:
            raise NotFound("No such member of this course.")
        services.resource_link_score_post(
            link=link,
            user=student,
            score_given=data.validated_data["score_given"],
            score_maximum=data.validated_data["score_maximum"],
            comment=data.validated_data.get("comment", ""),
        )
        return Response({"status": "posted"}, status=201)
