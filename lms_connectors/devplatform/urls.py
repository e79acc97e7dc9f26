"""The development platform, mounted at /lti/dev/."""

from django.urls import path

from lms_connectors.devplatform import views

urlpatterns = [
    path("", views.index, name="lti_dev_index"),
    path("start/<str:persona>/", views.start, name="lti_dev_start"),
    path("auth/", views.auth, name="lti_dev_auth"),
    path("jwks/", views.jwks, name="lti_dev_jwks"),
    path("token/", views.token, name="lti_dev_token"),
    path("nrps/<str:context_id>/", views.nrps, name="lti_dev_nrps"),
    path("ags/lineitems/<str:lineitem_id>/scores", views.ags_score, name="lti_dev_ags_score"),
    path("deep-link-return/", views.deep_link_return, name="lti_dev_deep_link_return"),
]
