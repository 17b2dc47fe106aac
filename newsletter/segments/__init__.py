"""Segments: who, among the subscribers, an expression picks (docs/segments.md).

``language.py`` parses the text into a tree (the config checks saved segments with it);
``sql.py`` compiles the tree into one SQLAlchemy condition on ``subscribers``, the same
on SQLite and PostgreSQL.
"""
