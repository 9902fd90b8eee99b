"""``python -m artifact_fs.server`` is ``artifact-fs serve``."""

from artifact_fs.server.cli import serve

serve(prog_name="artifact-fs serve")
