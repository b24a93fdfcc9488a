"""The organizer's back office: the admin site, branded iEvents, with the overview as its
front page and our own names for the screens ("Orders", "Payments")."""

import functools

from django.contrib import admin
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from checkout.promo import codes_given

from . import two_factor_views
from .admin_base import permitted_organization_ids
from .admin_time import in_zone, organization_zone
from .money import format_money
from .operations.overview import upcoming_overview


def codes_given_shown(events) -> list[dict]:
    """The "Codes" list under the overview: each promo code used on an upcoming event, the
    paid orders that used it and the discount it gave (``checkout.promo.codes_given``)."""
    return [{"event": figure.event, "code": figure.code, "orders": figure.orders,
             "discount": format_money(figure.discount, figure.event.currency)} for figure in codes_given(events)]


class IEventsAdminSite(admin.AdminSite):
    site_header = "iEvents"
    site_title = _("iEvents back office")
    index_title = _("Overview")
    index_template = "admin/overview.html"
    # The orders list needs the width (every column in view at 1280 px); the breadcrumbs
    # and the overview lead everywhere the sidebar did.
    enable_nav_sidebar = False

    def admin_view(self, view, cacheable=False):
        """Every page on the organization's clock (Django shows times in the active zone); the
        event's page switches to the event's own (``EventAdmin.changeform_view``)."""
        inner = super().admin_view(view, cacheable)

        @functools.wraps(inner)
        def on_the_organizations_clock(request, *args, **kwargs):
            zone = organization_zone(request)
            return inner(request, *args, **kwargs) if zone is None else in_zone(zone, inner, request, *args, **kwargs)

        return on_the_organizations_clock

    def get_app_list(self, request, app_label=None):
        """Each screen under the title its ModelAdmin gives it (``title``), if any; on the
        front page, the organizer's screens first (Orders, Events, Payments, Team, Settings)
        and the plumbing under "For developers"."""
        apps = super().get_app_list(request, app_label)
        for app in apps:
            for entry in app["models"]:
                title = getattr(self.get_model_admin(entry["model"]), "title", None)
                if title:
                    entry["name"] = title
        if app_label is not None:
            return apps
        return grouped_for_organizers(apps, self.index_url())

    def index_url(self) -> str:
        return reverse("admin:index", current_app=self.name)

    def get_urls(self):
        """The member's two-factor pages, behind the staff login like every admin page (and
        behind the code, or enrolment, as ``two_factor_views.TwoFactorMiddleware`` decides)."""
        def page(view, route, name):
            return path(route, self.admin_view(functools.partial(view, self)), name=name)

        return [
            page(two_factor_views.verify_view, "two-factor/verify/", "two_factor_verify"),
            page(two_factor_views.setup_view, "two-factor/setup/", "two_factor_setup"),
            page(two_factor_views.manage_view, "two-factor/", "two_factor"),
            *super().get_urls(),
        ]

    def index(self, request, extra_context=None):
        organizations = None if request.user.is_superuser else permitted_organization_ids(request, "view",
                                                                                          "ievents.event")
        overview = upcoming_overview(organizations)
        context = {"overview": overview, "codes_given": codes_given_shown([row.event for row in overview]),
                   **(extra_context or {})}
        return super().index(request, context)


# The organizer's screens, in the order they use them; every other screen is plumbing.
ORGANIZER_SCREENS = ["checkout.checkoutsession", "ievents.event", "payments.integrationsettings",
                     "ievents.membership", "ievents.organization"]


def grouped_for_organizers(apps: list[dict], index_url: str) -> list[dict]:
    """Django's app list regrouped: "Your organization" (the organizer's screens, in order)
    and "For developers" (notifications, provider messages, gate checks, API keys…)."""
    entries = {f"{app['app_label']}.{entry['object_name'].lower()}": entry for app in apps for entry in app["models"]}
    ours = [entries[key] for key in ORGANIZER_SCREENS if key in entries]
    rest = [entry for key, entry in entries.items() if key not in ORGANIZER_SCREENS]
    groups = []
    if ours:
        groups.append({"name": _("Your organization"), "app_label": "organization", "app_url": index_url,
                       "has_module_perms": True, "models": ours})
    if rest:
        groups.append({"name": _("For developers"), "app_label": "developers", "app_url": index_url + "#developers",
                       "has_module_perms": True, "models": rest})
    return groups
