"""URL routes of governance: pages under /usage, /keys, /policy; the REST API under /api."""

from django.urls import path

from caipi.governance import apis, views

app_name = "governance"

urlpatterns = [
    path("api/quota/me", apis.QuotaMeApi.as_view(), name="api_quota_me"),
    path("api/usage/me", apis.UsageMeApi.as_view(), name="api_usage_me"),
    path("api/keys", apis.ApiKeyListCreateApi.as_view(), name="api_keys"),
    path("api/keys/<int:key_id>/revoke", apis.ApiKeyRevokeApi.as_view(), name="api_key_revoke"),
    path(
        "api/courses/<int:course_id>/budget",
        apis.CourseBudgetApi.as_view(),
        name="api_course_budget",
    ),
    path(
        "api/courses/<int:course_id>/settings",
        apis.CourseSettingsApi.as_view(),
        name="api_course_settings",
    ),
    path("api/policy", apis.PolicyApi.as_view(), name="api_policy"),
    path("usage/", views.usage_site, name="usage_site"),
    path("usage/export.csv", views.usage_export_csv, name="usage_export"),
    path("courses/<int:course_id>/usage/", views.usage_course, name="usage_course"),
    path("keys/", views.keys_page, name="keys"),
    path("policy/", views.policy_page, name="policy"),
]
