from django.apps import AppConfig, apps
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy

# Our apps, whose models' names the back office shows.
OUR_APPS = ("ievents", "checkout", "payments", "webhooks")


def translate_derived_names() -> None:
    """A field or model without a ``verbose_name`` is named from its attribute ("customer
    email"), words written nowhere that gettext could find: they are translated here, as
    lazily as the ones written with ``gettext_lazy``, and the catalog holds them
    (``tests/admin/test_admin_in_portuguese.py`` fails when one is missing). Only the
    runtime names change; migrations still see the fields as declared."""
    for label in OUR_APPS:
        for model in apps.get_app_config(label).get_models():
            options = model._meta  # noqa: SLF001 - the documented Model _meta API
            for name in ("verbose_name", "verbose_name_plural"):
                # Not written in Meta: derived from the class name ("events", itself a lazy "{}s").
                if name not in options.original_attrs or not isinstance(getattr(options, name), Promise):
                    setattr(options, name, gettext_lazy(str(getattr(options, name))))
            for field in options.get_fields():
                if isinstance(getattr(field, "verbose_name", None), str):
                    field.verbose_name = gettext_lazy(field.verbose_name)


class IeventsConfig(AppConfig):
    name = "ievents"
    verbose_name = gettext_lazy("Organizations and events")

    def ready(self):
        translate_derived_names()
        from . import checks  # noqa: F401  registers the production checks (check --deploy)
