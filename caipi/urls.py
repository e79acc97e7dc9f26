"""CAIPI's URL map: each app mounts its own urls module."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from caipi.core import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics_view, name="metrics"),
    path("courses/<int:course_id>/", views.course_home, name="course_home"),
    path("signin/", views.signin, name="signin"),
    path("signout/", views.signout, name="signout"),
    path("signed-out/", views.signed_out, name="signed_out"),
    path("language/", views.language_choose, name="set_language"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="core/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("admin/", admin.site.urls),
    path("lti/", include("lms_connectors.urls")),
    path("api/deploy/", include("deploy.urls")),
    path("deploy/", include("deploy.page_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
    path("", include("prompts.urls")),
    path("", include("caipi.governance.urls")),
    path("", include("caipi.gateway.urls")),
    path("", include("rag.urls")),
]
