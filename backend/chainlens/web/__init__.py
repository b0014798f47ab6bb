"""The page: the jinja2 shell and the front-end build it links (``static/app``)."""
