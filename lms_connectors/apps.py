from django.apps import AppConfig


class LmsConnectorsConfig(AppConfig):
    name = "lms_connectors"
