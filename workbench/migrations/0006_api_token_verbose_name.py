from django.db import migrations


class Migration(migrations.Migration):
    """The admin's "Api tokens" named as the rest of the workbench names them: state only (no SQL)."""

    dependencies = [
        ("workbench", "0005_csp_violation"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="apitoken",
            options={"verbose_name": "API token", "verbose_name_plural": "API tokens"},
        ),
    ]
