"""The HUD at /hud: a read-only dashboard of one project.

Three static files; the page asks for a project id and token, keeps them in the
browser tab's session storage, and reads everything through the API itself
(`/v1/.../stats` and `runners`, `/2/.../tasks`, `/3/.../queues`), so it shows
nothing the token could not read anyway. Served with a content security policy
that allows only these files and requests to this origin.
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_FILES = {
    "/hud": ("index.html", "text/html; charset=utf-8"),
    "/hud/hud.js": ("hud.js", "text/javascript; charset=utf-8"),
    "/hud/hud.css": ("hud.css", "text/css; charset=utf-8"),
}


def routes() -> list[Route]:
    """One route per file, each read once."""
    folder = resources.files("workhorse.api") / "hud"
    out = []
    for path, (name, media_type) in _FILES.items():
        body = (folder / name).read_bytes()

        async def serve(
            request: Request, body: bytes = body, media_type: str = media_type
        ) -> Response:
            return Response(body, media_type=media_type, headers=HEADERS)

        out.append(Route(path, serve, methods=["GET"]))
    return out
