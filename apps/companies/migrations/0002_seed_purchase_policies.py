from decimal import Decimal

from django.db import migrations


def seed(apps, schema_editor):
    PurchasePolicy = apps.get_model("companies", "PurchasePolicy")
    PurchasePolicy.objects.get_or_create(
        tier="unverified",
        defaults={"max_purchase": Decimal("100"), "allow_card": True, "allow_paypal": True, "allow_bank_wire": False},
    )
    PurchasePolicy.objects.get_or_create(
        tier="verified",
        defaults={"max_purchase": Decimal("5000"), "allow_card": True, "allow_paypal": True, "allow_bank_wire": True},
    )


class Migration(migrations.Migration):
    dependencies = [("companies", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
