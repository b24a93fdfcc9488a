"""The sandbox provider's own payment page."""

from django.db.models import F
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from .models import Payment
from .sandbox import OUTCOME_KEY, SandboxProvider


@require_http_methods(["GET", "POST"])
def sandbox_page(request, payment_id):
    payments = Payment.objects.filter(provider=SandboxProvider.name)
    if request.method == "POST":
        # The button needs only the session's id for the way back, not its row.
        payment = get_object_or_404(payments.annotate(session_public_id=F("session__public_id")), public_id=payment_id)
        outcome = request.POST.get("outcome")
        if outcome in ("success", "failure") and OUTCOME_KEY not in payment.instructions:
            payment.instructions = {**payment.instructions, OUTCOME_KEY: outcome}
            payment.save(update_fields=["instructions", "updated_at"])
        return redirect(reverse("checkout:return", args=[payment.session_public_id]) + f"?payment={payment.public_id}")
    # The page shows the event.
    payment = get_object_or_404(payments.select_related("session__event"), public_id=payment_id)
    return render(request, "payments/sandbox.html", {"payment": payment, "session": payment.session})
