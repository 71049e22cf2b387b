"""DRF's clear-text tokens (rest_framework.authtoken, no longer installed) become hashed, expiring
API tokens: the same key keeps working for API_TOKEN_TTL_DAYS from this migration, so a
hospital's integrations are not cut off by the upgrade, but the database stops holding the keys.
Then the old table is dropped, with its migration records (the app is gone)."""

from datetime import timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import migrations, models
from django.utils import timezone
from knox.crypto import hash_token
from knox.settings import CONSTANTS

OLD_TABLE = "authtoken_token"


def _aware(value):
    """A raw cursor's timestamp: aware on PostgreSQL; naive UTC (or text) on SQLite."""
    value = models.DateTimeField().to_python(value)
    return timezone.make_aware(value, dt_timezone.utc) if timezone.is_naive(value) else value


def carry_over(apps, schema_editor):
    connection = schema_editor.connection
    if OLD_TABLE not in connection.introspection.table_names():
        return  # a fresh database: DRF's tokens were never created
    ApiToken = apps.get_model("accounts", "ApiToken")
    expiry = timezone.now() + timedelta(days=settings.API_TOKEN_TTL_DAYS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id, created FROM {OLD_TABLE}")
        rows = cursor.fetchall()
    for key, user_id, created in rows:
        token = ApiToken(user_id=user_id, token_key=key[:CONSTANTS.TOKEN_KEY_LENGTH],
                         digest=hash_token(key), expiry=expiry,
                         name="carried over from the previous token store")
        token.save()  # not objects.create: knox's manager makes a new key
        ApiToken.objects.filter(pk=token.pk).update(created=_aware(created))  # auto_now_add ignores it
    schema_editor.execute(f"DROP TABLE {OLD_TABLE}")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = %s", ["authtoken"])


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0003_apitoken"),
    ]

    # Irreversible in effect: the keys are not kept, so they cannot be put back.
    operations = [migrations.RunPython(carry_over, migrations.RunPython.noop)]
