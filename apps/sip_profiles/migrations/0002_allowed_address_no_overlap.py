from django.db import migrations

from apps.core.migration_sql import postgresql_sql

# The edge maps a source address to exactly one profile, so no two allowed
# networks may overlap anywhere in the system (203.0.113.0/29 and 203.0.113.5/32
# included). A GiST exclusion constraint enforces it on PostgreSQL, whatever
# requests race; the service checks first for a friendly message.
FORWARD = """
ALTER TABLE sip_profiles_allowedaddress
    ADD CONSTRAINT allowed_address_networks_do_not_overlap
    EXCLUDE USING gist ((network::inet) inet_ops WITH &&);
"""
BACKWARD = """
ALTER TABLE sip_profiles_allowedaddress DROP CONSTRAINT IF EXISTS allowed_address_networks_do_not_overlap;
"""


class Migration(migrations.Migration):
    dependencies = [("sip_profiles", "0001_initial")]
    operations = [postgresql_sql(FORWARD, BACKWARD)]
