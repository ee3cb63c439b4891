from django.urls import path

from apps.callerid import api

urlpatterns = [
    path("caller-ids/", api.CallerIdListApi.as_view(), name="caller-id-list"),
    path("caller-ids/options/", api.CallerIdOptionsApi.as_view(), name="caller-id-options"),
    path("caller-ids/<uuid:id>/", api.CallerIdDetailApi.as_view(), name="caller-id-detail"),
]
