"""Output shapes shared by the prompts API views (each view nests its own Input)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from prompts.models import BatchRun, Template, TemplateVersion, TestRun


class ProblemOutput(serializers.Serializer):
    field = serializers.CharField()
    message = serializers.CharField()
    line = serializers.IntegerField(allow_null=True)
    column = serializers.IntegerField(allow_null=True)


class TestCaseOutput(serializers.Serializer):
    name = serializers.CharField()
    inputs = serializers.DictField()
    checks = serializers.ListField(child=serializers.DictField())


class VersionOutput(serializers.ModelSerializer):
    """A version with everything it sends to the model, for course staff."""

    author = serializers.CharField(source="author.__str__", default="", read_only=True)
    tests = TestCaseOutput(many=True, read_only=True)

    class Meta:
        model = TemplateVersion
        fields = [
            "id", "number", "author", "created_at", "note", "engine", "system_prompt",
            "user_prompt", "variables", "model", "params", "use_notes", "notes_count",
            "starters", "tests",
        ]  # fmt: skip


class VersionSummaryOutput(serializers.ModelSerializer):
    author = serializers.CharField(source="author.__str__", default="", read_only=True)

    class Meta:
        model = TemplateVersion
        fields = ["id", "number", "author", "created_at", "note", "model"]


class TemplateOutput(serializers.ModelSerializer):
    """A template as course staff see it in lists."""

    published_number = serializers.IntegerField(
        source="published_version.number", default=None, read_only=True
    )

    class Meta:
        model = Template
        fields = [
            "id", "course", "name", "description", "audience", "state", "published_number",
            "library_state", "copied_from", "created_at", "updated_at",
        ]  # fmt: skip


class RunnableOutput(serializers.Serializer):
    """A published template as a student sees it: what to fill in, nothing of its prompts."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    inputs = serializers.ListField(child=serializers.DictField())
    starters = serializers.ListField(child=serializers.CharField())
    uses_notes = serializers.BooleanField()
    version_number = serializers.IntegerField()


def runnable_data(template: Template, version: TemplateVersion) -> dict[str, Any]:
    return {
        "id": template.pk,
        "name": template.name,
        "description": template.description,
        "inputs": version.variables,
        "starters": version.starters,
        "uses_notes": version.use_notes,
        "version_number": version.number,
    }


class TestResultOutput(serializers.Serializer):
    case_name = serializers.CharField()
    answer = serializers.CharField()
    checks = serializers.ListField(child=serializers.DictField())
    passed = serializers.BooleanField()
    error = serializers.CharField()


class TestRunOutput(serializers.ModelSerializer):
    version_number = serializers.IntegerField(source="version.number", read_only=True)
    results = TestResultOutput(many=True, read_only=True)

    class Meta:
        model = TestRun
        fields = [
            "id", "version", "version_number", "status", "total", "done", "passed", "error",
            "created_at", "finished_at", "results",
        ]  # fmt: skip


class BatchOutput(serializers.ModelSerializer):
    version_number = serializers.IntegerField(source="version.number", read_only=True)

    class Meta:
        model = BatchRun
        fields = [
            "id", "template", "version_number", "source", "status", "total", "done", "failed",
            "error", "created_at", "started_at", "finished_at", "purge_after",
        ]  # fmt: skip
