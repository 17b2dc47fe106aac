"""Deliverability: what decides whether mail reaches the inbox.

``doctor`` checks the sender's DNS (SPF, DKIM, DMARC, MX) and ``site_url`` (HTTPS,
one-click); ``dkim_keys`` and ``dkim_signing`` make and use the SMTP provider's DKIM
key; ``setup`` warns about settings that cost deliverability.
"""
