"""The dashboard: one page and its static files, served by every worker (no build step).

    GET /dashboard                  the page (web/static/dashboard.html)
    GET /static/{name}              its script and style
    GET /static/vendor/{name}       libraries vendored from npm (uPlot, with its LICENSE)

Only the files present at start are served (an allow-list: no path from the
request ever reaches the file system).
"""

from __future__ import annotations

from pathlib import Path

from faust.web import Request, Response, View

from app.main import app

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {
    ".html": "text/html",
    ".js": "application/javascript",
    ".css": "text/css",
    ".LICENSE": "text/plain",
}


def _files(folder: Path) -> dict[str, tuple[bytes, str]]:
    found: dict[str, tuple[bytes, str]] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        content_type = TYPES.get(path.suffix)
        if path.is_file() and content_type:
            found[path.name] = (path.read_bytes(), content_type)
    return found


ASSETS = _files(STATIC)
VENDOR = _files(STATIC / "vendor")
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def _serve(view: View, files: dict[str, tuple[bytes, str]], name: str) -> Response:
    if name not in files:
        return view.json({"error": "not_found", "reason": f"no file {name}"}, status=404)
    body, content_type = files[name]
    return view.bytes(body, content_type=content_type, headers=HEADERS)


@app.page("/dashboard")
class DashboardView(View):
    async def get(self, request: Request) -> Response:
        return _serve(self, ASSETS, "dashboard.html")


@app.page("/static/{name}")
class StaticView(View):
    async def get(self, request: Request, name: str) -> Response:
        return _serve(self, {k: v for k, v in ASSETS.items() if k != "package.json"}, name)


@app.page("/static/vendor/{name}")
class VendorView(View):
    async def get(self, request: Request, name: str) -> Response:
        return _serve(self, VENDOR, name)
