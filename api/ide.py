"""GraphiQL served by the app itself, from assets shipped in the package (api/static/graphiql).

No CDN: the back office of a retailer often runs in a closed network. The versions and licences
of the vendored files are listed in api/static/graphiql/VERSIONS.
"""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "static" / "graphiql"
PREFIX = "/_graphiql"

PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>loyalgraph · GraphiQL</title>
  <meta name="robots" content="noindex">
  <link rel="stylesheet" href="{PREFIX}/graphiql.min.css">
  <style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
  <div id="graphiql">Loading…</div>
  <script src="{PREFIX}/react.production.min.js"></script>
  <script src="{PREFIX}/react-dom.production.min.js"></script>
  <script src="{PREFIX}/graphiql.min.js"></script>
  <script src="{PREFIX}/init.js"></script>
</body>
</html>
"""


def page() -> str:
    return PAGE


ROUTES = [Mount(PREFIX, app=StaticFiles(directory=ASSETS), name="graphiql-assets")]
