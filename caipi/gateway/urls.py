"""Session-authenticated routes of the gateway (the /v1 API is a raw ASGI app, see asgi.py)."""

from django.urls import path

from caipi.gateway import apis, prompt_apis, views

urlpatterns = [
    path("prompts/<int:template_id>/", views.prompt_run_page, name="prompt_run_page"),
    path("courses/<int:course_id>/assistant/", views.assistant, name="course_assistant"),
    path("api/chat/", apis.chat_api, name="gateway_chat"),
    path("api/jobs/", apis.JobSubmitApi.as_view(), name="gateway_jobs"),
    path("api/jobs/<int:job_id>/", apis.JobDetailApi.as_view(), name="gateway_job"),
    path(
        "api/prompts/templates/<int:template_id>/run/",
        prompt_apis.prompt_run_api,
        name="gateway_prompt_run",
    ),
    path(
        "api/prompts/templates/<int:template_id>/versions/<int:version_id>/try/",
        prompt_apis.prompt_try_api,
        name="gateway_prompt_try",
    ),
    path(
        "api/prompts/courses/<int:course_id>/usage/",
        prompt_apis.prompt_usage_api,
        name="gateway_prompt_usage",
    ),
]
