"""URL routes of the LTI tool, mounted at /lti/ (the development platform at /lti/dev/)."""

from django.urls import include, path

from lms_connectors import apis, views

urlpatterns = [
    path("login/", views.lti_login, name="lti_login"),
    path("launch/", views.lti_launch, name="lti_launch"),
    path("jwks/", views.lti_jwks, name="lti_jwks"),
    path("register/", views.lti_register, name="lti_register"),
    path("register/<str:invite_token>/", views.lti_register, name="lti_register_invited"),
    path("deep-link/<str:launch_id>/", views.lti_deep_link, name="lti_deep_link"),
    path("setup/", views.lti_setup, name="lti_setup"),
    path("setup/pending/", views.lti_pending, name="lti_pending"),
    path("courses/<int:course_id>/", views.lti_course, name="lti_course"),
    path(
        "api/courses/<int:course_id>/roster-sync/",
        apis.RosterSyncApi.as_view(),
        name="lti_api_roster_sync",
    ),
    path(
        "api/resource-links/<int:link_id>/scores/",
        apis.ScorePostApi.as_view(),
        name="lti_api_score_post",
    ),
    path("dev/", include("lms_connectors.devplatform.urls")),
]
