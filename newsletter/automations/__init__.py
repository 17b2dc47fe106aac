"""Automations: mail that goes out on its own, through the same ledger as campaigns.

A *sequence* is a folder of Markdown steps (``automations/welcome/``), each with
``after: 3 days`` in its front matter: how long after a reader became active it is
due. ``newsletter.yaml`` names the sequences that run (``automations: {welcome: {path:
automations/welcome}}``). :mod:`.sequences` reads them; :mod:`.steps` sends what is
due, each step version as one campaign whose ledger rows are added as readers become
due, so a reader gets a step once, whatever crashes or runs twice. Who entered when is
kept by :mod:`newsletter.store.automation_tables`.
"""
