from django.urls import path

from . import views, views_orders

app_name = "checkout"

urlpatterns = [
    path("e/<str:event_id>/", views.event_page, name="event"),
    path("c/<str:session_id>/", views.attendee_form, name="session"),
    path("c/<str:session_id>/again/", views.start_again, name="start_again"),
    path("c/<str:session_id>/review/", views.review, name="review"),
    path("c/<str:session_id>/return/", views.return_page, name="return"),
    path("c/<str:session_id>/status/", views.status_page, name="status"),
    path("c/<str:session_id>/cancel/", views.cancel, name="cancel"),
    path("c/<str:session_id>/calendar.ics", views.calendar, name="calendar"),
    path("find/", views_orders.find, name="find_order_anywhere"),
    path("find/<slug:organization_slug>/", views_orders.find, name="find_order"),
    path("e/<str:event_id>/find/", views_orders.find, name="find_order_for_event"),
    path("o/<str:token>/", views_orders.order, name="order"),
    path("o/<str:token>/calendar.ics", views_orders.order_calendar, name="order_calendar"),
    path("o/<str:token>/t/<str:code>.png", views_orders.ticket_png, name="order_ticket_png"),
    path("o/<str:token>/resend/", views_orders.order_resend, name="order_resend"),
    path("o/<str:token>/cancel/", views_orders.order_cancel, name="order_cancel"),
]
