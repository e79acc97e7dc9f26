"""URL routes of the prompts app: the REST API under /api/prompts/ and the HTML pages."""

from django.urls import path
from django.views.i18n import JavaScriptCatalog

from prompts import views
from prompts.apis import templates as t
from prompts.apis import work as w
from prompts.i18n import in_user_language

app_name = "prompts"

api = "api/prompts/"
urlpatterns = [
    path("courses/<int:course_id>/prompts/", views.course_prompts, name="course_prompts"),
    path("courses/<int:course_id>/prompts/new/", views.template_new, name="template_new"),
    path("prompts/<int:template_id>/edit/", views.template_editor, name="template_editor"),
    path("prompts/<int:template_id>/batches/", views.template_batches, name="template_batches"),
    path(
        "jsi18n/prompts/",
        in_user_language(JavaScriptCatalog.as_view(packages=["prompts"], domain="djangojs")),
        name="jsi18n",
    ),
    path(
        f"{api}courses/<int:course_id>/templates/",
        t.CourseTemplatesApi.as_view(),
        name="api_course_templates",
    ),
    path(f"{api}courses/<int:course_id>/import/", t.ImportApi.as_view(), name="api_import"),
    path(f"{api}courses/<int:course_id>/preview/", w.PreviewApi.as_view(), name="api_preview"),
    path(f"{api}templates/<int:template_id>/", t.TemplateDetailApi.as_view(), name="api_template"),
    path(
        f"{api}templates/<int:template_id>/versions/", t.VersionsApi.as_view(), name="api_versions"
    ),
    path(
        f"{api}templates/<int:template_id>/versions/<int:version_id>/",
        t.VersionDetailApi.as_view(),
        name="api_version",
    ),
    path(f"{api}templates/<int:template_id>/publish/", t.PublishApi.as_view(), name="api_publish"),
    path(
        f"{api}templates/<int:template_id>/unpublish/",
        t.UnpublishApi.as_view(),
        name="api_unpublish",
    ),
    path(f"{api}templates/<int:template_id>/archive/", t.ArchiveApi.as_view(), name="api_archive"),
    path(f"{api}templates/<int:template_id>/diff/", t.DiffApi.as_view(), name="api_diff"),
    path(f"{api}templates/<int:template_id>/copy/", t.CopyApi.as_view(), name="api_copy"),
    path(f"{api}templates/<int:template_id>/export/", t.ExportApi.as_view(), name="api_export"),
    path(
        f"{api}templates/<int:template_id>/library/",
        t.LibraryProposeApi.as_view(),
        name="api_library_propose",
    ),
    path(
        f"{api}templates/<int:template_id>/test-runs/",
        w.TestRunsApi.as_view(),
        name="api_test_runs",
    ),
    path(f"{api}templates/<int:template_id>/batches/", w.BatchesApi.as_view(), name="api_batches"),
    path(f"{api}library/", t.LibraryApi.as_view(), name="api_library"),
    path(
        f"{api}library/<int:template_id>/decision/",
        t.LibraryDecisionApi.as_view(),
        name="api_library_decision",
    ),
    path(f"{api}test-runs/<int:run_id>/", w.TestRunDetailApi.as_view(), name="api_test_run"),
    path(f"{api}batches/<int:batch_id>/", w.BatchDetailApi.as_view(), name="api_batch"),
    path(
        f"{api}batches/<int:batch_id>/cancel/", w.BatchCancelApi.as_view(), name="api_batch_cancel"
    ),
    path(
        f"{api}batches/<int:batch_id>/results.csv",
        w.BatchResultsApi.as_view(),
        name="api_batch_results",
    ),
]
