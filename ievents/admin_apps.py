"""The admin app, with the iEvents site (``ievents.admin_site``) as its default site."""

from django.contrib.admin.apps import AdminConfig


class IEventsAdminConfig(AdminConfig):
    default_site = "ievents.admin_site.IEventsAdminSite"
