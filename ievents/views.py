from django.shortcuts import render

from .models import Event


def home(request):
    events = Event.objects.filter(published=True).select_related("organization")[:50]
    return render(request, "home.html", {"events": events})
