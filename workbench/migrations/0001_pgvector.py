from django.db import migrations


class Migration(migrations.Migration):
    """pgvector backs the frame/transcript embeddings used for reproduction retrieval."""

    initial = True
    dependencies: list = []
    operations = [migrations.RunSQL("CREATE EXTENSION IF NOT EXISTS vector;", migrations.RunSQL.noop)]
