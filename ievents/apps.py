from django.apps import AppConfig


class IeventsConfig(AppConfig):
    name = "ievents"
    verbose_name = "Organizations and events"
