"""The HTTP transport (FastAPI on uvicorn): app, routes, body intake, middleware, schemas, the error shape."""
