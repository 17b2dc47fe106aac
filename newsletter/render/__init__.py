"""The render pipeline: an issue file is read into an ``Issue`` (``issues``), compiled
once through Jinja, MJML and CSS inlining into HTML and text (``compile``), personalised
per recipient (``personalize``) and composed into a message with its headers (``mail``).
``checks`` and ``links_check`` look for problems before sending; ``images`` resizes the
images an issue shows; ``build`` writes it all out for ``newsletter build``."""
