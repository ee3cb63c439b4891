from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views import View
from django.views.decorators.http import require_POST

from apps.companies import selectors, services
from apps.companies.forms import CompanyCreateForm, CompanySettingsForm, InvitationForm, RoleForm, VerificationForm
from apps.companies.models import Capability, Invitation, Membership, Notice, VerificationDocument
from apps.companies.notices import notice_dismiss
from apps.companies.scoping import CompanyPageMixin
from apps.companies.tenancy import activate_company
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.core.forms import add_application_error
from apps.core.once import OncePostMixin


class CompanySettingsView(CompanyPageMixin, OncePostMixin, View):
    write_capability = Capability.MANAGE_COMPANY

    def _render(self, form: CompanySettingsForm, status: int = 200) -> HttpResponse:
        company = self.company
        return render(
            self.request,
            "companies/settings.html",
            {
                "form": form,
                "policy": selectors.purchase_policy_for_company(company),
                "if_verified": None if company.is_verified else selectors.verified_policy_preview(company),
                "can_edit": self.tenancy.can(Capability.MANAGE_COMPANY),
            },
            status=status,
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        company = self.company
        return self._render(
            CompanySettingsForm(
                initial={"name": company.name, "country": company.country.code, "tax_number": company.tax_number}
            )
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        form = CompanySettingsForm(request.POST)
        if form.is_valid():
            try:
                services.company_update(actor=self.actor, company=self.company, **form.cleaned_data)
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                messages.success(request, "Company settings saved.")
                return redirect("company-settings")
        return self._render(form, status=400)


class CompanyCreateView(LoginRequiredMixin, OncePostMixin, View):
    """Create another company (or a first one, for someone who left their last): a company-less
    page, so its one-time tokens are the user's."""

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "companies/create.html", {"form": CompanyCreateForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = CompanyCreateForm(request.POST)
        if form.is_valid():
            try:
                company = services.company_create(
                    actor=Actor.from_request(request), owner=request.user, **form.cleaned_data
                )
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                activate_company(request, company)
                messages.success(request, f"{company.name} was created. You are its owner.")
                return redirect("dashboard")
        return render(request, "companies/create.html", {"form": form}, status=400)


@login_required
@require_POST
def company_switch(request: HttpRequest) -> HttpResponse:
    company = get_object_or_404(selectors.companies_for_user(user=request.user), public_id=request.POST.get("company"))
    activate_company(request, company)
    messages.info(request, f"You are now working in {company.name}.")
    return redirect("dashboard")


class MemberListView(CompanyPageMixin, OncePostMixin, View):
    write_capability = Capability.MANAGE_MEMBERS
    model = Membership

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(InvitationForm())

    def _render(self, invite_form: InvitationForm, status: int = 200) -> HttpResponse:
        return render(
            self.request,
            "companies/members.html",
            {
                "members": selectors.member_list(company=self.company),
                "invitations": [i for i in selectors.invitation_list(company=self.company) if i.status == "pending"],
                "invite_form": invite_form,
                "can_manage": self.tenancy.can(Capability.MANAGE_MEMBERS),
                "can_manage_owners": self.tenancy.can(Capability.MANAGE_OWNERS),
                "role_choices": RoleForm.base_fields["role"].choices,  # type: ignore[attr-defined]
            },
            status=status,
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        """Invite someone."""
        form = InvitationForm(request.POST)
        if form.is_valid():
            try:
                invitation, _ = services.invitation_create(actor=self.actor, company=self.company, **form.cleaned_data)
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                messages.success(request, f"Invitation sent to {invitation.email}.")
                return redirect("member-list")
        return self._render(form, status=400)


class MemberRoleView(CompanyPageMixin, OncePostMixin, View):
    write_capability = Capability.MANAGE_MEMBERS
    model = Membership

    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        membership = self.get_object_or_404(id)
        form = RoleForm(request.POST)
        try:
            if not form.is_valid():
                raise ApplicationError("Choose a role.", field="role")
            services.membership_change_role(actor=self.actor, membership=membership, role=form.cleaned_data["role"])
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"{membership.user.email} is now {membership.get_role_display().lower()}.")
        return redirect("member-list")


class MemberRemoveView(CompanyPageMixin, OncePostMixin, View):
    write_capability = Capability.MANAGE_MEMBERS
    model = Membership

    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        membership = self.get_object_or_404(id)
        try:
            services.membership_remove(actor=self.actor, membership=membership)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"{membership.user.email} was removed from {self.company.name}.")
        return redirect("member-list")


class LeaveCompanyView(CompanyPageMixin, View):
    # Anyone may leave; the last-owner rule still applies.
    write_capability = Capability.VIEW
    model = Membership

    def post(self, request: HttpRequest) -> HttpResponse:
        membership = get_object_or_404(self.get_queryset(), user=request.user)
        try:
            services.membership_remove(actor=self.actor, membership=membership)
        except ApplicationError as error:
            messages.error(request, error.message)
            return redirect("member-list")
        messages.success(request, f"You left {self.company.name}.")
        request.session.pop("active_company", None)
        return redirect("dashboard")


class InvitationRevokeView(CompanyPageMixin, OncePostMixin, View):
    write_capability = Capability.MANAGE_MEMBERS
    model = Invitation

    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        invitation = self.get_object_or_404(id)
        try:
            services.invitation_revoke(actor=self.actor, invitation=invitation)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"The invitation of {invitation.email} was revoked.")
        return redirect("member-list")


class InvitationAcceptView(View):
    """The e-mailed link. Signed-out visitors are sent to sign in or sign up first."""

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        invitation = services.invitation_for_token(token)
        if invitation is None:
            raise Http404("This invitation link is not valid.")
        if not request.user.is_authenticated:
            request.session["pending_invitation"] = token
        return render(request, "companies/invitation_accept.html", {"invitation": invitation, "token": token})

    def post(self, request: HttpRequest, token: str) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect(f"{reverse('account_login')}?next={request.path}")
        request.session.pop("pending_invitation", None)
        try:
            membership = services.invitation_accept(actor=Actor.from_request(request), token=token, user=request.user)
        except ApplicationError as error:
            invitation = services.invitation_for_token(token)
            if invitation is None:
                raise Http404("This invitation link is not valid.") from None
            return render(
                request,
                "companies/invitation_accept.html",
                {"invitation": invitation, "token": token, "error": error.message},
                status=400,
            )
        activate_company(request, membership.company)
        messages.success(request, f"Welcome to {membership.company.name}.")
        return redirect("dashboard")


class VerificationView(CompanyPageMixin, OncePostMixin, View):
    write_capability = Capability.MANAGE_COMPANY

    def _render(self, form: VerificationForm | None, status: int = 200) -> HttpResponse:
        company = self.company
        return render(
            self.request,
            "companies/verification.html",
            {
                "form": form,
                "latest": selectors.latest_verification_request(company=company),
                "policy": selectors.purchase_policy_for_company(company),
                "if_verified": None if company.is_verified else selectors.verified_policy_preview(company),
                "can_submit": self.tenancy.can(Capability.MANAGE_COMPANY)
                and company.verification_status in ("unverified", "rejected"),
            },
            status=status,
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        latest = selectors.latest_verification_request(company=self.company)
        initial: dict[str, Any] = {"country": self.company.country.code, "legal_name": self.company.name}
        if latest is not None:
            # A rejected request is resubmitted with its details filled in.
            initial.update({name: getattr(latest, name) for name in services.VERIFICATION_FIELDS})
            initial["country"] = latest.country.code
        return self._render(VerificationForm(initial=initial))

    def post(self, request: HttpRequest) -> HttpResponse:
        form = VerificationForm(request.POST, request.FILES)
        if form.is_valid():
            fields = dict(form.cleaned_data)
            documents = fields.pop("documents")
            try:
                services.verification_submit(actor=self.actor, company=self.company, documents=documents, **fields)
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                messages.success(
                    request, "Thank you. Staff will review your documents, usually within one business day."
                )
                return redirect("verification")
        return self._render(form, status=400)


@login_required
def verification_document_download(request: HttpRequest, id: Any) -> HttpResponse:
    """Staff only: documents are never served under a public URL."""
    if not request.user.is_staff:
        raise Http404
    document = get_object_or_404(VerificationDocument, public_id=id)
    response = HttpResponse(document.file.open("rb").read(), content_type=document.content_type)
    response["Content-Disposition"] = f'inline; filename="{document.original_name}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


class NoticeDismissView(CompanyPageMixin, View):
    write_capability = Capability.MANAGE_COMPANY
    model = Notice

    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        notice_dismiss(actor=self.actor, notice=self.get_object_or_404(id))
        if request.htmx:  # type: ignore[attr-defined]
            return HttpResponse("")
        return redirect("dashboard")
