// The API documentation: Swagger UI (vendored, no CDN) on the app's own OpenAPI schema.
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
