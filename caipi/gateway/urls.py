"""Session-authenticated routes of the gateway (the /v1 API is a raw ASGI app, see asgi.py)."""

from django.urls import path

from caipi.gateway import apis, views

urlpatterns = [
    path("courses/<int:course_id>/assistant/", views.assistant, name="course_assistant"),
    path("api/chat/", apis.chat_api, name="gateway_chat"),
    path("api/jobs/", apis.JobSubmitApi.as_view(), name="gateway_jobs"),
    path("api/jobs/<int:job_id>/", apis.JobDetailApi.as_view(), name="gateway_job"),
]
