from django.apps import AppConfig


class IeventsConfig(AppConfig):
    name = "ievents"
    verbose_name = "Organizations and events"

    def ready(self):
        from . import checks  # noqa: F401  registers the production checks (check --deploy)
