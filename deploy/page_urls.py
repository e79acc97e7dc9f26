"""HTML pages of deploy/, mounted at /deploy/."""

from django.urls import path

from deploy import views

app_name = "deploy"
urlpatterns = [path("ops/", views.operations, name="operations")]
