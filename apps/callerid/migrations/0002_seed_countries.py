from django.db import migrations

# Countries whose regulators and carriers accept a presented caller ID from a
# SIP trunk when the number is the customer's own. Staff edit the list.
COUNTRIES = [
    "AT", "AU", "BE", "CA", "CH", "CZ", "DE", "DK", "ES", "FI", "FR", "GB", "IE", "IT",
    "LU", "NL", "NO", "NZ", "PL", "PT", "SE", "US",
]  # fmt: skip


def seed(apps, schema_editor):
    CallerIdCountry = apps.get_model("callerid", "CallerIdCountry")
    for code in COUNTRIES:
        CallerIdCountry.objects.get_or_create(country=code)


class Migration(migrations.Migration):
    dependencies = [("callerid", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
