// The API docs: the vendored Swagger UI (web/static/vendor) rendering this worker's /openapi.json.
// A file of its own, not an inline script, so the page runs under a CSP without 'unsafe-inline'.
(function () {
  "use strict";
  window.docs = { rendered: false, ui: null };

  // The page documents the worker that serves it: a `servers` entry naming another
  // host (a proxy's, or localhost) must not send "Try it out" requests there.
  function sameOrigin(request) {
    var url = new URL(request.url, window.location.href);
    if (url.origin !== window.location.origin) {
      request.url = window.location.origin + url.pathname + url.search;
    }
    return request;
  }

  window.docs.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#docs",
    deepLinking: true,
    tryItOutEnabled: true,
    displayRequestDuration: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // no badge fetched from validator.swagger.io, and no ?url= loading another document
    validatorUrl: null,
    queryConfigEnabled: false,
    requestInterceptor: sameOrigin,
    onComplete: function () { window.docs.rendered = true; }
  });
})();
