"""The send pipeline: a campaign (``campaign``) snapshots its recipients into the ledger
(``ledger``) under a lease (``lease``), hands them to a provider (``providers``) in
batches at the configured rate (``ratelimit``) and records each outcome (``ledger_log``).
What comes back settles the ledger: provider events (``delivery_events``) and the
mailbox (``mailbox``, matched by ``return_tokens``). ``sending`` holds the workflows the
CLI and the web app call; ``schedule`` runs campaigns when they are due; ``mail_queue``
keeps one-off mail (confirmations) until it is sent."""
