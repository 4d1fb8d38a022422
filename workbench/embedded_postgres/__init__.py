"""Database backend for the embedded PostgreSQL: plain ``django.db.backends.postgresql`` that finds the
running server's socket folder and port when it connects (they are known only once it runs)."""
