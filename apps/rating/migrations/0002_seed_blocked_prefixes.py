from django.db import migrations

# The common never-callable ranges, kept modest: staff add the rest in the admin, and
# number_blocked() also asks phonenumbers' emergency and short-number metadata, so a
# national emergency or service code missing here is still refused.
#
# (country, prefix, exact, kind, reason). Country "*" means whoever dials it; a prefix
# with "+" is matched against the E.164 number, one without against what is dialled.
BLOCKED = [
    # Emergency
    ("*", "112", False, "emergency", "Emergency services (112)"),
    ("US", "911", False, "emergency", "Emergency services (911)"),
    ("CA", "911", False, "emergency", "Emergency services (911)"),
    ("GB", "999", False, "emergency", "Emergency services (999)"),
    ("AU", "000", False, "emergency", "Emergency services (000)"),
    ("DE", "110", False, "emergency", "Police (110)"),
    # North American N11 service codes
    ("US", "211", False, "special_service", "Community services (211)"),
    ("US", "311", False, "special_service", "City government services (311)"),
    ("US", "411", False, "special_service", "Directory assistance (411)"),
    ("US", "511", False, "special_service", "Traffic information (511)"),
    ("US", "611", False, "special_service", "Carrier repair service (611)"),
    ("US", "711", False, "special_service", "Telecommunications relay service (711)"),
    ("US", "811", False, "special_service", "Call before you dig (811)"),
    ("CA", "411", False, "special_service", "Directory assistance (411)"),
    # Directory enquiries elsewhere
    ("GB", "118", False, "special_service", "Directory enquiries (118)"),
    ("DE", "118", False, "special_service", "Directory enquiries (118)"),
    # Operators: only the whole dialled string, since 0… and 00… start ordinary numbers elsewhere
    ("US", "0", True, "operator", "Operator (0)"),
    ("US", "00", True, "operator", "Long-distance operator (00)"),
    ("GB", "100", False, "operator", "Operator (100)"),
    ("GB", "155", False, "operator", "International operator (155)"),
    # Premium rate, by E.164 range
    ("US", "+1900", False, "premium_rate", "Premium rate (+1 900)"),
    ("GB", "+449", False, "premium_rate", "Premium rate (+44 9…)"),
    ("DE", "+49900", False, "premium_rate", "Premium rate (+49 900)"),
    ("AU", "+61190", False, "premium_rate", "Premium rate (+61 190)"),
]


def seed(apps, schema_editor):
    BlockedPrefix = apps.get_model("rating", "BlockedPrefix")
    for country, prefix, exact, kind, reason in BLOCKED:
        BlockedPrefix.objects.get_or_create(
            country=country, prefix=prefix, defaults={"exact": exact, "kind": kind, "reason": reason}
        )


class Migration(migrations.Migration):
    dependencies = [("rating", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
