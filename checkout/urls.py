from django.urls import path

from . import views

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
]
