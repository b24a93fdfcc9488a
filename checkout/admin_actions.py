"""The order's action buttons (refund, cancel, resend tickets, resolve) and their views.

A placeholder: helper h7 fills ``OrderActionsMixin`` (its ``get_urls`` adds the action
views) and ``templates/admin/checkout/_order_actions.html`` (the buttons). The order admin
(``checkout.admin.CheckoutSessionAdmin``) already inherits the mixin first and includes the
template where the buttons belong; permissions come from ``ievents.roles.can``.
"""


class OrderActionsMixin:
    """Filled by h7: the order actions' URLs and views for ``CheckoutSessionAdmin``."""
