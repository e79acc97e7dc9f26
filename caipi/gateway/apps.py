from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "caipi.gateway"
    label = "gateway"
    verbose_name = "Model gateway"
