"""Admin REST API of deploy/, mounted at /api/deploy/."""

from django.urls import path

from deploy import apis

urlpatterns = [
    path("models/", apis.ModelListCreateApi.as_view(), name="deploy_models"),
    path("endpoints/", apis.EndpointListCreateApi.as_view(), name="deploy_endpoints"),
    path("endpoints/<int:endpoint_id>/", apis.EndpointDetailApi.as_view(), name="deploy_endpoint"),
    path(
        "endpoints/<int:endpoint_id>/drain/",
        apis.EndpointDrainApi.as_view(),
        name="deploy_endpoint_drain",
    ),
    path("deployments/", apis.DeploymentListApplyApi.as_view(), name="deploy_deployments"),
    path("deployments/<path:name>/", apis.DeploymentDetailApi.as_view(), name="deploy_deployment"),
    path("sd", apis.prometheus_sd, name="deploy_prometheus_sd"),
]
