"""Prompt fixtures: a valid version's content and a published template in ML101."""

from __future__ import annotations

from typing import Any

import pytest

from caipi.core.models import Course, User
from prompts import services
from prompts.models import Template


def content(**changes: Any) -> dict[str, Any]:
    """A valid version: explain a topic at a level, with one test case."""
    base: dict[str, Any] = {
        "engine": "plain",
        "system_prompt": "You are the tutor of {{ course.title }}. Address {{ user.given_name }}.",
        "user_prompt": "Explain {{ input.topic }} at {{ input.level }} level.",
        "variables": [
            {"name": "topic", "kind": "short_text", "label": "Topic", "max_length": 100},
            {
                "name": "level",
                "kind": "choice",
                "choices": ["beginner", "advanced"],
                "default": "beginner",
                "required": False,
            },
        ],
        "model": "tutor",
        "params": {"temperature": 0.2, "max_tokens": 200},
        "starters": ["Give me an example"],
        "tests": [
            {
                "name": "overfitting",
                "inputs": {"topic": "overfitting"},
                "checks": [{"kind": "length", "min": 1}],
            }
        ],
    }
    return {**base, **changes}


@pytest.fixture(autouse=True)
def tutor_model(db: None) -> None:
    """The chat model the templates name (the gateway registers the model catalogue)."""
    from deploy.models import Model

    Model.objects.get_or_create(name="tutor", defaults={"served_name": "sim-model"})


@pytest.fixture
def template(lecturer: User, course: Course) -> Template:
    """Alice's draft "Explain a concept" in ML101, one version."""
    return services.template_create(
        actor=lecturer, course=course, name="Explain a concept", content=content()
    )


@pytest.fixture
def published(template: Template, lecturer: User) -> Template:
    """The same template, its first version published."""
    return services.template_publish(
        actor=lecturer, template=template, version=template.versions.get()
    )
