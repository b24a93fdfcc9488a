"""The sandbox provider's own payment page."""

from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from .models import Payment
from .sandbox import OUTCOME_KEY, SandboxProvider


@require_http_methods(["GET", "POST"])
def sandbox_page(request, payment_id):
    # The page shows the event; the button only needs the session's id for the way back.
    related = "session" if request.method == "POST" else "session__event"
    payment = get_object_or_404(Payment.objects.select_related(related), public_id=payment_id,
                                provider=SandboxProvider.name)
    if request.method == "POST":
        outcome = request.POST.get("outcome")
        if outcome in ("success", "failure") and OUTCOME_KEY not in payment.instructions:
            payment.instructions = {**payment.instructions, OUTCOME_KEY: outcome}
            payment.save(update_fields=["instructions", "updated_at"])
        return redirect(reverse("checkout:return", args=[payment.session.public_id]) + f"?payment={payment.public_id}")
    return render(request, "payments/sandbox.html", {"payment": payment, "session": payment.session})
