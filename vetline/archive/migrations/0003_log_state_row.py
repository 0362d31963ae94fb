from django.db import migrations


def create_state(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("archive", "LogState").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("archive", "0002_append_only_triggers")]

    operations = [migrations.RunPython(create_state, migrations.RunPython.noop)]
