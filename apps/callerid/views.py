from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from apps.billing.pages import OncePostMixin
from apps.callerid import selectors, services
from apps.callerid.forms import LandlineForm
from apps.callerid.models import VERIFICATION_DAYS, Landline
from apps.companies.models import Capability
from apps.companies.scoping import CompanyPageMixin
from apps.core.exceptions import ApplicationError
from apps.core.forms import add_application_error

_SIGNATURES = ((b"%PDF", "application/pdf"), (b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


class CallerIdListView(CompanyPageMixin, OncePostMixin, View):
    write_capability = Capability.MANAGE_SERVICE
    model = Landline

    def _render(self, form: LandlineForm, status: int = 200) -> HttpResponse:
        company = self.company
        landlines = selectors.landline_list(company=company).annotate(
            profile_count=Count("caller_id_for", filter=Q(caller_id_for__deleted_at__isnull=True))
        )
        return render(
            self.request,
            "callerid/list.html",
            {
                "form": form,
                "landlines": landlines,
                "options": selectors.caller_id_options(company=company),
                "countries": selectors.supported_country_list(),
                "verification_days": VERIFICATION_DAYS,
                "can_manage": self.tenancy.can(Capability.MANAGE_SERVICE),
            },
            status=status,
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(LandlineForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = LandlineForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                landline = services.landline_register(actor=self.actor, company=self.company, **form.cleaned_data)
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                messages.success(
                    request,
                    f"Thank you. Staff will review the proof for {landline.number}, usually within one business day.",
                )
                return redirect("callerid-list")
        return self._render(form, status=400)


class CallerIdWithdrawView(CompanyPageMixin, OncePostMixin, View):
    write_capability = Capability.MANAGE_SERVICE
    model = Landline

    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        landline = self.get_object_or_404(id)
        try:
            services.landline_withdraw(actor=self.actor, landline=landline)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"{landline.number} was withdrawn. No profile presents it any more.")
        return redirect("callerid-list")


@login_required
def landline_proof_download(request: HttpRequest, id: Any) -> HttpResponse:
    """Staff only: proofs of ownership are never served under a public URL."""
    if not request.user.is_staff:
        raise Http404
    landline = get_object_or_404(Landline, public_id=id)
    with landline.proof.open("rb") as proof:
        content = proof.read()
    # The type was checked from the first bytes on upload; it is read the same way here.
    content_type = next((t for sig, t in _SIGNATURES if content.startswith(sig)), "application/octet-stream")
    response = HttpResponse(content, content_type=content_type)
    disposition = "inline" if content_type != "application/octet-stream" else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{landline.proof_name.replace(chr(34), "")}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
