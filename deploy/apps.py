from django.apps import AppConfig


class DeployConfig(AppConfig):
    name = "deploy"

    def ready(self) -> None:
        from django.urls import reverse

        from caipi.core import navigation
        from caipi.core.permissions import SITE_ADMIN

        navigation.register_top_link(
            navigation.TopLink(
                key="operations",
                title="Operations",
                url=lambda: reverse("deploy:operations"),
                action=SITE_ADMIN,
                order=30,
            )
        )
