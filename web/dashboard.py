"""The dashboard and the API docs: two pages and their static files, served by every worker.

    GET /dashboard                  the live analytics page (web/static/dashboard.html)
    GET /docs                       Swagger UI rendering GET /openapi.json (web/static/docs.html)
    GET /static/{name}              their scripts and style
    GET /static/vendor/{name}       libraries vendored from npm (uPlot, Swagger UI), with licenses

No build step and no CDN. Only the files present at start are served (an allow-list:
no path from the request ever reaches the file system).
"""

from __future__ import annotations

from pathlib import Path

from faust.web import Request, Response, View

from app.main import app
from web.operations import Answer, Param, operation

STATIC = Path(__file__).resolve().parent / "static"
# charset given: Swagger UI's bundle is UTF-8 with non-ASCII characters
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".LICENSE": "text/plain; charset=utf-8",
    ".NOTICE": "text/plain; charset=utf-8",
    # swagger-ui-bundle.js.LICENSE.txt: the bundle's first line points to it by that name
    ".txt": "text/plain; charset=utf-8",
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


PAGE = (Answer(200, "The page.", {"type": "string"}, media=("text/html",)),)
FILE = (
    Answer(
        200,
        "The file.",
        {"type": "string"},
        media=("text/javascript", "text/css", "text/html", "text/plain"),
    ),
    Answer(404, "No such file (`not_found`)."),
)
NAME = Param("name", "path", {"type": "string", "minLength": 1}, "The file's name.", True)


def _serve(view: View, files: dict[str, tuple[bytes, str]], name: str) -> Response:
    if name not in files:
        return view.json({"error": "not_found", "reason": f"no file {name}"}, status=404)
    body, content_type = files[name]
    # as a header: aiohttp refuses a charset in its content_type argument
    return view.bytes(body, headers={**HEADERS, "Content-Type": content_type})


@app.page("/dashboard")
class DashboardView(View):
    @operation("The live dashboard", tag="analytics", answers=PAGE)
    async def get(self, request: Request) -> Response:
        return _serve(self, ASSETS, "dashboard.html")


@app.page("/docs")
class DocsView(View):
    @operation("This API, in Swagger UI", tag="operations", answers=PAGE)
    async def get(self, request: Request) -> Response:
        return _serve(self, ASSETS, "docs.html")


@app.page("/static/{name}")
class StaticView(View):
    @operation("A page's script or style", tag="operations", params=(NAME,), answers=FILE)
    async def get(self, request: Request, name: str) -> Response:
        return _serve(self, {k: v for k, v in ASSETS.items() if k != "package.json"}, name)


@app.page("/static/vendor/{name}")
class VendorView(View):
    @operation(
        "A vendored library (uPlot, Swagger UI) or its license",
        tag="operations",
        params=(NAME,),
        answers=FILE,
    )
    async def get(self, request: Request, name: str) -> Response:
        return _serve(self, VENDOR, name)
