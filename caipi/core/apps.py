from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "caipi.core"
    label = "core"
    verbose_name = "CAIPI core"
