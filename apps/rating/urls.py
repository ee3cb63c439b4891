from django.urls import path

from apps.rating import views

urlpatterns = [
    path("rates/", views.RateLookupView.as_view(), name="rates"),
]
