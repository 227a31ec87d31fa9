// The API's documentation page (/api/docs): Swagger UI over /openapi.json.
// A file of its own rather than an inline script, so that the page's Content-Security-Policy
// allows scripts from this origin only.
"use strict";

window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  // The default sends the document's URL to a public validator for a badge.
  validatorUrl: null,
});
