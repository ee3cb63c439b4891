from django.urls import path

from apps.numbers import views

urlpatterns = [
    path("numbers/", views.NumberListView.as_view(), name="number-list"),
    path("numbers/<uuid:id>/", views.NumberDetailView.as_view(), name="number-detail"),
    path("numbers/<uuid:id>/assign/", views.NumberAssignView.as_view(), name="number-assign"),
    path("numbers/<uuid:id>/auto-renew/", views.NumberAutoRenewView.as_view(), name="number-auto-renew"),
    path("numbers/<uuid:id>/release/", views.NumberReleaseView.as_view(), name="number-release"),
]
