from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = gettext_lazy("Payments")

    def ready(self):
        from django.core.signals import setting_changed
        from django.db.models.signals import post_delete, post_save

        from ievents.models import Organization

        from .models import IntegrationSettings
        from .registry import forget_inbound_routes

        # The inbound routes this process keeps (payments.registry) must not outlive a change.
        for model in (Organization, IntegrationSettings):
            post_save.connect(forget_inbound_routes, sender=model, dispatch_uid=f"forget_routes_save_{model.__name__}")
            post_delete.connect(forget_inbound_routes, sender=model, dispatch_uid=f"forget_routes_delete_{model.__name__}")
        setting_changed.connect(forget_inbound_routes, dispatch_uid="forget_routes_settings")
