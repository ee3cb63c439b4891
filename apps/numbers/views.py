from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from apps.billing.pages import OncePostMixin, act_once, confirm_page, priced_post
from apps.companies.models import Capability
from apps.companies.scoping import CompanyPageMixin
from apps.core.exceptions import ApplicationError, Conflict
from apps.core.forms import add_application_error
from apps.core.prg import redirect_done
from apps.numbers import selectors, services
from apps.numbers.forms import NumberAssignForm, NumberAutoRenewForm, NumberBuyForm, NumberSearchForm
from apps.numbers.models import NumberSubscription

RESULTS_PER_PAGE = 25
SEARCH_FIELDS = ("country", "area", "contains", "type")
ENDED_SHOWN = 20


class _NumberPage(CompanyPageMixin, View):
    model = NumberSubscription
    write_capability = Capability.MANAGE_SERVICE

    def scope_queryset(self, queryset: Any) -> Any:
        return selectors.with_relations(queryset)

    def _context(self) -> dict[str, Any]:
        return {
            "can_manage": self.tenancy.can(Capability.MANAGE_SERVICE),
            "accounts": list(selectors.business_accounts_for(self.company)),
            "currency": self.company.currency,
        }


class NumberListView(_NumberPage):
    """The company's numbers, and the search of available numbers with a buy form per result."""

    def _search(self, params: Any) -> dict[str, Any]:
        # The first visit shows what is available in the company's own country.
        if not any(name in params for name in SEARCH_FIELDS):
            params = {"country": self.company.country.code}
        form = NumberSearchForm(params)
        results = None
        if form.is_valid():
            try:
                queryset = selectors.available_numbers(
                    country=form.cleaned_data["country"] or None,
                    area=form.cleaned_data["area"],
                    contains=form.cleaned_data["contains"],
                    number_type=form.cleaned_data["type"] or None,
                )
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                results = Paginator(queryset, RESULTS_PER_PAGE).get_page(params.get("page"))
        currency = self.company.currency
        rows = [
            {
                "stock": stock,
                "price_3": stock.price(currency=currency, months=3),
                "price_12": stock.price(currency=currency, months=12),
            }
            for stock in (results or [])
        ]
        query = {name: form.data.get(name, "") for name in SEARCH_FIELDS}
        return {"search_form": form, "results": results, "rows": rows, "search": query}

    def _render(self, params: Any, buy_form: NumberBuyForm | None = None, status: int = 200) -> HttpResponse:
        company = self.company
        context = {
            **self._context(),
            **self._search(params),
            "buy_form": buy_form,
            "numbers": list(selectors.number_subscriptions_for(company, status=NumberSubscription.Status.ACTIVE)),
            "ended": list(
                selectors.number_subscriptions_for(company, status=NumberSubscription.Status.ENDED).order_by(
                    "-ended_at"
                )[:ENDED_SHOWN]
            ),
        }
        if self.request.htmx:  # type: ignore[attr-defined]
            return render(self.request, "numbers/_results.html", context, status=status)
        return render(self.request, "numbers/list.html", context, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request.GET)

    def post(self, request: HttpRequest) -> HttpResponse:
        """Buy. A failed purchase shows the same search results again, with the error."""
        form = NumberBuyForm(request.POST)
        params = {name: request.POST.get(name, "") for name in SEARCH_FIELDS}
        status = 400
        if form.is_valid():
            data = form.cleaned_data

            def buy() -> HttpResponse:
                try:
                    subscription = services.number_buy(
                        actor=self.actor,
                        company=self.company,
                        number=data["number"],
                        months=data["months"],
                        auto_renew=data["auto_renew"],
                    )
                except ApplicationError as error:
                    add_application_error(form, error)
                    return self._render(params, buy_form=form, status=409 if isinstance(error, Conflict) else 400)
                return redirect_done(
                    request,
                    reverse("number-detail", args=[subscription.public_id]),
                    message=f"{subscription.number.number} is yours until "
                    f"{subscription.current_period_end:%d %b %Y}. "
                    "Assign it to a business account so that its calls reach a SIP profile.",
                )

            try:
                return priced_post(
                    request,
                    company=self.company,
                    quote=lambda: services.number_buy_quote(
                        company=self.company, number=data["number"], months=data["months"]
                    ),
                    act=buy,
                    confirm=lambda context: confirm_page(request, context),
                    back=lambda: self._render(params),
                    title=f"Buy {data['number']} for {data['months']} months",
                    button="Confirm and buy",
                    cancel_url=reverse("number-list"),
                )
            except ApplicationError as error:
                add_application_error(form, error)
                status = 409 if isinstance(error, Conflict) else 400
        return self._render(params, buy_form=form, status=status)


class NumberDetailView(_NumberPage):
    def get(self, request: HttpRequest, id: Any) -> HttpResponse:
        subscription = self.get_object_or_404(id)
        renewal = (
            services.number_renewal_quote(subscription=subscription)
            if subscription.status == NumberSubscription.Status.ACTIVE
            else None
        )
        return render(
            request,
            "numbers/detail.html",
            {
                **self._context(),
                "n": subscription,
                "charges": list(selectors.number_charges(subscription)),
                "renewal": renewal,
            },
        )


def _back(request: HttpRequest, subscription: NumberSubscription) -> HttpResponse:
    if request.POST.get("back") == "detail":
        return redirect("number-detail", subscription.public_id)
    return redirect("number-list")


class NumberAssignView(OncePostMixin, _NumberPage):
    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        subscription = self.get_object_or_404(id)
        form = NumberAssignForm(request.POST)
        try:
            if not form.is_valid():
                raise ApplicationError("Choose a business account of your company.", field="business_account")
            account = selectors.business_account_for(self.company, form.cleaned_data["business_account"])
            services.number_assign(actor=self.actor, subscription=subscription, business_account=account)
        except ApplicationError as error:
            messages.error(request, f"{subscription.number.number}: {error.message}")
        else:
            if account is None:
                messages.success(request, f"{subscription.number.number} is no longer assigned.")
            else:
                messages.success(request, f"Calls to {subscription.number.number} now reach {account.name}.")
        return _back(request, subscription)


class NumberAutoRenewView(_NumberPage):
    """Turning auto-renewal on commits the company balance to the next term's price: it is a
    priced action, confirmed on a step that names the price, the balance it is paid from and
    the balance after (as buying a number is). Turning it off costs nothing and acts at once.
    Either acts once per form (a reload or a second click does nothing more)."""

    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        subscription = self.get_object_or_404(id)
        form = NumberAutoRenewForm(request.POST)
        form.is_valid()
        auto_renew = bool(form.cleaned_data.get("auto_renew"))
        back = reverse("number-detail", args=[subscription.public_id])

        def act() -> HttpResponse:
            try:
                changed = services.number_set_auto_renew(
                    actor=self.actor, subscription=subscription, auto_renew=auto_renew
                )
            except ApplicationError as error:
                messages.error(request, f"{subscription.number.number}: {error.message}")
                return _back(request, subscription)
            end = f"{changed.current_period_end:%d %b %Y}"
            return redirect_done(
                request,
                back if request.POST.get("back") == "detail" else reverse("number-list"),
                message=f"{changed.number.number} renews on {end}."
                if auto_renew
                else f"{changed.number.number} will end on {end} and will not be renewed.",
            )

        if not auto_renew or subscription.auto_renew or subscription.status != NumberSubscription.Status.ACTIVE:
            return act_once(request, company=self.company, act=act)
        try:
            return priced_post(
                request,
                company=self.company,
                quote=lambda: services.number_renewal_quote(subscription=subscription),
                act=act,
                confirm=lambda context: confirm_page(request, context),
                back=lambda: redirect(back),
                title=f"Renew {subscription.number.number} for {subscription.months} months",
                button="Confirm and turn auto-renew on",
                cancel_url=back,
            )
        except ApplicationError as error:
            messages.error(request, f"{subscription.number.number}: {error.message}")
            return _back(request, subscription)


class NumberReleaseView(OncePostMixin, _NumberPage):
    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        subscription = self.get_object_or_404(id)
        try:
            services.number_release(actor=self.actor, subscription=subscription)
        except ApplicationError as error:
            messages.error(request, f"{subscription.number.number}: {error.message}")
            return _back(request, subscription)
        messages.success(request, f"{subscription.number.number} was released. It no longer receives calls.")
        return redirect("number-list")
