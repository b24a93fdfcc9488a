from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class CheckoutConfig(AppConfig):
    name = "checkout"
    verbose_name = gettext_lazy("Checkout")
