from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("connectors", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="connection",
            name="capability_report",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="connection",
            name="capability_checked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
