"""Starting an issue: a new newsletter folder or issue from the starter (``scaffold``),
or an issue made from a web article (``article_import``) or a feed (``feed_import``)."""
