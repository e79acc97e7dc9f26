"""Routes of the rag app: the lecturer's documents page, passages, and the REST API."""

from django.urls import path

from rag import apis, views

app_name = "rag"

urlpatterns = [
    path("courses/<int:course_id>/documents/", views.documents_page, name="documents"),
    path("passages/<int:chunk_id>/", views.passage_page, name="passage"),
    path(
        "api/rag/courses/<int:course_id>/documents/",
        apis.DocumentListUploadApi.as_view(),
        name="api_documents",
    ),
    path("api/rag/courses/<int:course_id>/search/", apis.SearchApi.as_view(), name="api_search"),
    path("api/rag/courses/<int:course_id>/sync/", apis.SyncApi.as_view(), name="api_sync"),
    path("api/rag/courses/<int:course_id>/stats/", apis.StatsApi.as_view(), name="api_stats"),
    path(
        "api/rag/documents/<int:document_id>/",
        apis.DocumentDetailApi.as_view(),
        name="api_document",
    ),
    path("api/rag/jobs/<int:job_id>/", apis.JobDetailApi.as_view(), name="api_job"),
    path("api/rag/passages/<int:chunk_id>/", apis.PassageApi.as_view(), name="api_passage"),
]
