from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "caipi.gateway"
    label = "gateway"
    verbose_name = "Model gateway"

    def ready(self) -> None:
        from caipi.gateway import prompt_wiring

        prompt_wiring.connect()
