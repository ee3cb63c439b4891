from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from apps.billing.pages import OncePostMixin
from apps.business_accounts import selectors, services
from apps.business_accounts.filters import BusinessAccountFilter
from apps.business_accounts.forms import BusinessAccountCreateForm, BusinessAccountEditForm
from apps.business_accounts.models import BusinessAccount
from apps.companies.models import Capability
from apps.companies.scoping import CompanyPageMixin
from apps.core.exceptions import ApplicationError
from apps.core.forms import add_application_error

PAGE_SIZE = 50


class BusinessAccountListView(CompanyPageMixin, OncePostMixin, View):
    write_capability = Capability.MANAGE_SERVICE
    model = BusinessAccount

    def scope_queryset(self, queryset: Any) -> Any:
        return selectors.with_relations(queryset)

    def _render(self, form: BusinessAccountCreateForm, status: int = 200) -> HttpResponse:
        # A filter value that is not valid filters nothing (the page's choices are the valid ones).
        filters = BusinessAccountFilter(self.request.GET, queryset=self.get_queryset())
        accounts = filters.qs
        search = filters.form.cleaned_data.get("search", "")
        profile_filter = filters.form.cleaned_data.get("sip_profile", "")
        page = Paginator(accounts, PAGE_SIZE).get_page(self.request.GET.get("page"))
        query = self.request.GET.copy()
        query.pop("page", None)
        return render(
            self.request,
            "business_accounts/list.html",
            {
                "page": page,
                "rows": [(account, selectors.call_button_html(account)) for account in page],
                "query": query.urlencode(),
                "search": search,
                "profile_filter": profile_filter,
                "profiles": list(selectors.live_profiles(company=self.company)),
                "form": form,
                "can_manage": self.tenancy.can(Capability.MANAGE_SERVICE),
                "sip_domain": settings.SIP_DOMAIN,
            },
            status=status,
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(BusinessAccountCreateForm(company=self.company))

    def post(self, request: HttpRequest) -> HttpResponse:
        form = BusinessAccountCreateForm(request.POST, company=self.company)
        if form.is_valid():
            try:
                account = services.business_account_create(actor=self.actor, company=self.company, **form.cleaned_data)
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                messages.success(request, f"Business account “{account.name}” was created.")
                return redirect("business-account-list")
        return self._render(form, status=400)


class BusinessAccountEditView(CompanyPageMixin, OncePostMixin, View):
    write_capability = Capability.MANAGE_SERVICE
    model = BusinessAccount

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("company", "sip_profile", "member__user")

    def _render(self, account: BusinessAccount, form: BusinessAccountEditForm, status: int = 200) -> HttpResponse:
        return render(
            self.request,
            "business_accounts/edit.html",
            {
                "account": account,
                "form": form,
                "call_button_html": selectors.call_button_html(account),
                "sip_address": selectors.sip_address(account),
                "can_manage": self.tenancy.can(Capability.MANAGE_SERVICE),
            },
            status=status,
        )

    def get(self, request: HttpRequest, id: Any) -> HttpResponse:
        account = self.get_object_or_404(id)
        initial = {"display_name": account.display_name, "member": account.member.public_id if account.member else None}
        return self._render(account, BusinessAccountEditForm(initial=initial, company=self.company))

    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        account = self.get_object_or_404(id)
        form = BusinessAccountEditForm(request.POST, company=self.company)
        if form.is_valid():
            try:
                services.business_account_update(actor=self.actor, account=account, **form.cleaned_data)
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                messages.success(request, f"Business account “{account.name}” was saved.")
                return redirect("business-account-list")
        return self._render(account, form, status=400)


class BusinessAccountAssignView(CompanyPageMixin, OncePostMixin, View):
    write_capability = Capability.MANAGE_SERVICE
    model = BusinessAccount

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("company")

    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        account = self.get_object_or_404(id)
        chosen = request.POST.get("sip_profile", "")
        try:
            profile = None
            if chosen:
                try:
                    profile = selectors.live_profiles(company=self.company).filter(public_id=uuid.UUID(chosen)).first()
                except ValueError:
                    profile = None
                if profile is None:
                    raise ApplicationError("Choose one of your company's SIP profiles.", field="sip_profile")
            account = services.business_account_assign(actor=self.actor, account=account, profile=profile)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            if account.sip_profile_id:
                messages.success(request, f"“{account.name}” now rings SIP profile “{account.sip_profile}”.")
            else:
                messages.success(request, f"“{account.name}” is not routed to any profile; it can sign in again.")
        return redirect("business-account-list")


class BusinessAccountDeleteView(CompanyPageMixin, OncePostMixin, View):
    write_capability = Capability.MANAGE_SERVICE
    model = BusinessAccount

    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        account = self.get_object_or_404(id)
        try:
            services.business_account_delete(actor=self.actor, account=account)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Business account “{account.name}” was deleted.")
        return redirect("business-account-list")
