from django.urls import path

from . import views

app_name = "payments"

urlpatterns = [
    path("sandbox/pay/<str:payment_id>/", views.sandbox_page, name="sandbox_page"),
]
