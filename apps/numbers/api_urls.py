from django.urls import path

from apps.numbers import api

urlpatterns = [
    path("numbers/available/", api.AvailableNumberListApi.as_view(), name="number-available"),
    path("numbers/", api.NumberListApi.as_view(), name="number-list"),
    path("numbers/<uuid:id>/", api.NumberDetailApi.as_view(), name="number-detail"),
]
