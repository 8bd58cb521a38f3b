// Swagger UI over this server's own /openapi.json; no validator badge (it would call
// validator.swagger.io), so the page makes no request to any other host.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
});
