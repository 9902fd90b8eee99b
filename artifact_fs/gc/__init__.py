"""Garbage collection of MLflow's deleted runs, experiments and logged models (``artifact-fs gc``).

``backend_store`` reads and prunes MLflow's tables through SQLAlchemy; ``roots`` measures and deletes
one artifact root on any store; ``collector`` chooses what goes, as ``mlflow gc`` does, and keeps what
live things point into; ``maintenance`` finds orphans and abandoned uploads; ``report`` writes the
JSON-lines report; ``command`` is the click command. See docs/gc.md.
"""
