from django.urls import path

from apps.callerid import views

urlpatterns = [
    path("caller-id/", views.CallerIdListView.as_view(), name="callerid-list"),
    path("caller-id/<uuid:id>/withdraw/", views.CallerIdWithdrawView.as_view(), name="callerid-withdraw"),
    path("staff/landline-proofs/<uuid:id>/", views.landline_proof_download, name="landline-proof"),
]
