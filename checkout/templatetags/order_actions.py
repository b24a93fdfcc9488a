from django import template

from checkout.admin_actions import buttons_for

register = template.Library()


@register.simple_tag(takes_context=True)
def order_action_buttons(context, session):
    """The action buttons of an order's admin page (``admin/checkout/_order_actions.html``)."""
    return buttons_for(context["request"], session)
