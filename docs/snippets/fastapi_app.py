"""FastAPI: ``uvicorn fastapi_app:app --no-access-log``."""

from fastapi import FastAPI, Request

import dockerflow_wsgi.logging
from dockerflow_wsgi.asgi import DockerflowASGIMiddleware

dockerflow_wsgi.logging.configure(name="myservice", level="INFO")  # mozlog JSON on stdout

app = FastAPI()
app.add_middleware(DockerflowASGIMiddleware)


@app.get("/")
async def hello(request: Request) -> dict:
    return {"message": "hello", "request_id": request.scope["dockerflow.request_id"]}
