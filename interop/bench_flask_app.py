"""The HTTP benchmark's route, for Flask (see `tessera-bench http`).

    SECRET_KEY=... gunicorn -w 2 -b 127.0.0.1:PORT --chdir interop bench_flask_app:app

``GET /`` reads ``session.get("user")`` (absent is fine), increments
``session["counter"]`` (absent counts as 0) and answers the new value as
plain text: the same route every server in the benchmark serves.

Environment:
  SECRET_KEY                   required
  FLASK_*                      any other Flask config, via Flask's own
                               app.config.from_prefixed_env()
  FLASK_SESSION_TYPE=redis     server-side sessions through Flask-Session 0.8,
                               in the Redis at SESSION_REDIS_URL (its key
                               prefix from FLASK_SESSION_KEY_PREFIX); otherwise
                               Flask's default signed-cookie sessions
"""

from __future__ import annotations

import os

from flask import Flask, session


def create_app() -> Flask:
    app = Flask(__name__)
    secret_key = os.environ.get("SECRET_KEY")
    if not secret_key:
        raise SystemExit("bench_flask_app: set SECRET_KEY in the environment")
    app.config["SECRET_KEY"] = secret_key
    app.config.from_prefixed_env()

    if app.config.get("SESSION_TYPE") == "redis":
        import redis
        from flask_session import Session

        url = os.environ.get("SESSION_REDIS_URL")
        if not url:
            raise SystemExit("bench_flask_app: FLASK_SESSION_TYPE=redis needs SESSION_REDIS_URL")
        app.config["SESSION_REDIS"] = redis.from_url(url)
        Session(app)

    @app.get("/")
    def counter():
        session.get("user")
        value = session.get("counter", 0) + 1
        session["counter"] = value
        return str(value), 200, {"Content-Type": "text/plain; charset=utf-8"}

    return app


app = create_app()
