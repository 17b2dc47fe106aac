"""The public site: a web version of every sent issue, the archive by year, Atom and RSS
feeds (all issues and per topic), the sitemap and robots.txt.

Everything comes from the campaigns' snapshots (:mod:`newsletter.store.snapshots`),
never from the issue files as they are now. :class:`~newsletter.site.pages.Site` makes
every file of the site from them; ``newsletter serve`` answers with those files and
``newsletter site build`` writes them to a folder (:mod:`newsletter.site.export`), so
the two are the same pages. Links between pages are relative, so the folder works on
any static host and under any path; feeds, the sitemap and the canonical and Open Graph
URLs are absolute, from ``site_url``.
"""
