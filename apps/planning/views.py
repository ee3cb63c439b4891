from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from apps.companies.models import Capability
from apps.companies.scoping import CompanyPageMixin
from apps.core.exceptions import ApplicationError
from apps.core.forms import add_application_error
from apps.core.once import OncePostMixin
from apps.planning import bandwidth, services
from apps.planning.forms import CalculatorForm, ChecklistForm
from apps.planning.models import ReadinessChecklist
from apps.planning.selectors import readiness_checklist

CALCULATOR_FIELDS = tuple(CalculatorForm.base_fields)


def calculator_context(form: CalculatorForm) -> dict[str, Any]:
    """The calculator's answer for a valid form, and the guide's table for its codec, packetisation
    and line (the defaults' while the form is not filled in or not valid)."""
    initial = {name: field.initial for name, field in form.fields.items()}
    valid = form.is_bound and form.is_valid()
    data = form.cleaned_data if valid else initial
    call = bandwidth.call_bandwidth(
        codec=data["codec"], packetisation_ms=int(data["packetisation"]), link=data["link"], srtp=bool(data["srtp"])
    )
    reserve = int(data["reserve_percent"])
    context: dict[str, Any] = {"call": call, "reserve_percent": reserve, "result": None}
    context["guide_rows"] = bandwidth.guide_table(call=call, reserve_percent=reserve)
    if valid:
        result: dict[str, Any] = {}
        for direction in ("upload", "download"):
            speed = data[f"{direction}_kbps"]
            if speed:
                result[f"{direction}_channels"] = bandwidth.channels_for_speed(
                    speed_kbps=speed, call=call, reserve_percent=reserve
                )
        if "upload_channels" in result and "download_channels" in result:
            result["channels"] = min(result["upload_channels"], result["download_channels"])
        if data["channels"]:
            result["channels_wanted"] = data["channels"]
            result["speed_needed"] = bandwidth.speed_for_channels(
                channels=data["channels"], call=call, reserve_percent=reserve
            )
        context["result"] = result
    return context


class PlanningView(CompanyPageMixin, View):
    """The planning tools: the bandwidth and channel calculator, the network quality limits and
    the company's readiness checklist."""

    def get(self, request: HttpRequest) -> HttpResponse:
        bound = any(name in request.GET for name in CALCULATOR_FIELDS)
        form = CalculatorForm(request.GET if bound else None)
        return render(request, "planning/planning.html", self.context(form, ChecklistForm(initial=self.ticked())))

    def ticked(self) -> dict[str, bool]:
        return {item.field: item.done for item in readiness_checklist(self.company).items}

    def context(self, form: CalculatorForm, checklist_form: ChecklistForm) -> dict[str, Any]:
        return {
            "form": form,
            **calculator_context(form),
            "links": bandwidth.LINKS.values(),
            "header_bytes": bandwidth.IP_UDP_RTP_BYTES,
            "quality_limits": bandwidth.QUALITY_LIMITS,
            "checklist": readiness_checklist(self.company),
            "checklist_form": checklist_form,
            "can_manage": self.tenancy.can(Capability.MANAGE_SERVICE),
        }


class ChecklistView(OncePostMixin, PlanningView):
    model = ReadinessChecklist
    write_capability = Capability.MANAGE_SERVICE

    def get(self, request: HttpRequest) -> HttpResponse:
        return redirect(reverse("planning") + "#checklist")

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ChecklistForm(request.POST)
        if form.is_valid():
            try:
                services.readiness_checklist_update(actor=self.actor, company=self.company, ticked=form.cleaned_data)
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                state = readiness_checklist(self.company)
                messages.success(
                    request,
                    "The checklist is complete: your network is ready."
                    if state.complete
                    else f"Checklist saved: {state.done_count} of {state.total} done.",
                )
                return redirect(reverse("planning") + "#checklist")
        return render(request, "planning/planning.html", self.context(CalculatorForm(), form), status=400)
