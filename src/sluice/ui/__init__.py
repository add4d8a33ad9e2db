"""`sluice ui`: a web dashboard over the project's database and store.

Pages rendered on the server (Jinja2), charts drawn on the server as SVG, and a
JSON API under ``/api/``. Write actions call the registry's own functions
(sluice.registry.promotion), so the same promotion policy applies as on the
command line. FastAPI is imported only by :mod:`sluice.ui.app`: importing
sluice, or this package, never imports it (it comes with the ``[ui]`` extra).
"""
