from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "caipi.core"
    label = "core"
    verbose_name = "CAIPI core"

    def ready(self) -> None:
        # Bind shared tasks to CAIPI's Celery app in every process, not only in workers.
        from caipi import celery, checks  # noqa: F401
