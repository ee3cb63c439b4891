from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path

from apps.accounts import views as account_views
from apps.core import views as core_views
from apps.core.docs import DocsView, SchemaView
from apps.reports import views as report_views

api_v1: list[URLPattern | URLResolver] = [
    path("", include("apps.companies.api_urls")),
    path("", include("apps.accounts.api_urls")),
    path("", include("apps.audit.api_urls")),
    path("", include("apps.sip_profiles.api_urls")),
    path("", include("apps.business_accounts.api_urls")),
    path("", include("apps.numbers.api_urls")),
    path("", include("apps.callerid.api_urls")),
    path("", include("apps.billing.api_urls")),
    path("", include("apps.bundles.api_urls")),
    path("", include("apps.cdrs.api_urls")),
    path("", include("apps.rating.api_urls")),
    path("", include("apps.edge.api_urls")),
    path("", include("apps.reports.monthly.api_urls")),
    path("schema/", SchemaView.as_view(), name="api-schema"),
    path("docs/", DocsView.as_view(url_name="v1:api-schema"), name="api-docs"),
]

# The staff side (/staff/) under the product's name; its index starts with what needs a person
# (templates/admin/index.html, apps.reports.staff_desk).
admin.site.site_header = f"{settings.PRODUCT_NAME} staff"
admin.site.site_title = f"{settings.PRODUCT_NAME} staff"
admin.site.index_title = "Staff desk"

urlpatterns = [
    path("", report_views.DashboardView.as_view(), name="dashboard"),
    path("health/", core_views.health, name="health"),
    path("healthz", core_views.healthz, name="healthz"),
    # Browsers ask for /favicon.ico whatever the page's <link rel="icon"> says.
    path("favicon.ico", core_views.favicon, name="favicon"),
    path("accounts/signup/", account_views.InvitationAwareSignupView.as_view(), name="account_signup"),
    path("accounts/", include("allauth.urls")),
    path("", include("apps.accounts.urls")),
    path("", include("apps.companies.urls")),
    path("", include("apps.audit.urls")),
    path("", include("apps.sip_profiles.urls")),
    path("", include("apps.bundles.urls")),
    path("", include("apps.business_accounts.urls")),
    path("", include("apps.numbers.urls")),
    path("", include("apps.callerid.urls")),
    path("", include("apps.billing.urls")),
    path("", include("apps.cdrs.urls")),
    path("", include("apps.rating.urls")),
    path("", include("apps.edge.urls")),
    path("", include("apps.planning.urls")),
    path("", include("apps.reports.urls")),
    path("", include("apps.reports.monthly.urls")),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("staff/", admin.site.urls),
]

handler404 = "apps.core.views.not_found"
handler500 = "apps.core.views.server_error"
