from django.apps import AppConfig


class RatingConfig(AppConfig):
    name = "apps.rating"
    label = "rating"
    default_auto_field = "django.db.models.BigAutoField"
