from decimal import Decimal

from django.db import migrations

PRICES = {
    ("channel_monthly", "USD"): Decimal("9.95"),
    ("channel_monthly", "EUR"): Decimal("8.95"),
    ("channel_monthly", "GBP"): Decimal("7.95"),
    ("us_bundle_monthly", "USD"): Decimal("39.00"),
    ("us_bundle_monthly", "EUR"): Decimal("36.00"),
    ("us_bundle_monthly", "GBP"): Decimal("31.00"),
}


def seed(apps, schema_editor):
    Price = apps.get_model("billing", "Price")
    for (kind, currency), amount in PRICES.items():
        Price.objects.get_or_create(kind=kind, currency=currency, defaults={"amount": amount})


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
