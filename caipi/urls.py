"""CAIPI's URL map: each app mounts its own urls module."""

from django.contrib import admin
from django.urls import path

from caipi.core import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
]
