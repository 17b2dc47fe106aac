"""Running a newsletter for real: backups, moving to another database, deployment files.

- :mod:`~newsletter.ops.backup`: ``db backup`` and ``db restore`` (file format in
  :mod:`~newsletter.ops.backup_file`).
- :mod:`~newsletter.ops.copy`: ``db copy``, everything into another database.
- :mod:`~newsletter.ops.load`: what restore and copy share: loading a consistent set
  of tables into an empty database in one transaction, migrated forward.
- :mod:`~newsletter.ops.deploy`: ``deploy systemd``, unit files and a Caddyfile.

The SQL for reading and loading tables on either engine is
:mod:`newsletter.store.table_dump`.
"""
