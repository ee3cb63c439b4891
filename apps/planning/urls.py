from django.urls import path

from apps.planning import views

urlpatterns = [
    path("planning/", views.PlanningView.as_view(), name="planning"),
    path("planning/checklist/", views.ChecklistView.as_view(), name="planning-checklist"),
]
