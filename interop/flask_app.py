#!/usr/bin/env python3
"""A real Flask app serving the seed tutorials' session routes.

The Rust demo implements the same routes; the interop tests run both and
exchange cookies between them.

    SECRET_KEY=... python interop/flask_app.py --host 127.0.0.1 --port 0

Environment:
  SECRET_KEY                   required
  SECRET_KEY_FALLBACKS         optional, comma separated, oldest first
  PERMANENT_SESSION_LIFETIME   optional, seconds
  FLASK_*                      any other Flask config, via Flask's own
                               app.config.from_prefixed_env() (values are
                               parsed as JSON when possible), e.g.
                               FLASK_SESSION_COOKIE_SAMESITE=Lax,
                               FLASK_SESSION_COOKIE_SECURE=true
  FLASK_SESSION_TYPE=redis     server-side sessions through Flask-Session, in
                               the Redis at SESSION_REDIS_URL; Flask-Session's
                               own settings come the same way, e.g.
                               FLASK_SESSION_KEY_PREFIX=app:,
                               FLASK_SESSION_SERIALIZATION_FORMAT=json,
                               FLASK_SESSION_USE_SIGNER=true

Once listening it prints ``ready http://HOST:PORT`` on stdout (``--port 0``
picks a free port; read it from that line). Request logs go to stderr.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import os
import sys

from flask import (
    Flask,
    Response,
    flash,
    get_flashed_messages,
    redirect,
    request,
    session,
    url_for,
)
from werkzeug.serving import make_server


def create_app() -> Flask:
    app = Flask(__name__)

    secret_key = os.environ.get("SECRET_KEY")
    if not secret_key:
        raise SystemExit("flask_app: set SECRET_KEY in the environment")
    app.config["SECRET_KEY"] = secret_key
    fallbacks = os.environ.get("SECRET_KEY_FALLBACKS", "")
    app.config["SECRET_KEY_FALLBACKS"] = [k for k in fallbacks.split(",") if k]
    lifetime = os.environ.get("PERMANENT_SESSION_LIFETIME")
    if lifetime:
        app.config["PERMANENT_SESSION_LIFETIME"] = dt.timedelta(seconds=int(lifetime))
    app.config.from_prefixed_env()

    # Flask's TaggedJSONSerializer, for the test helpers' JSON bodies, taken
    # before Flask-Session replaces the session interface.
    tagged = app.session_interface.serializer
    if app.config.get("SESSION_TYPE") == "redis":
        import redis
        from flask_session import Session

        app.config["SESSION_REDIS"] = redis.from_url(os.environ["SESSION_REDIS_URL"])
        Session(app)

    # ---- seed 000: Flask Tutorials: Session Configuration
    @app.get("/set_session")
    def set_session():
        session["username"] = "your_username"
        return "Session data set."

    @app.get("/get_session")
    def get_session():
        if "username" in session:
            return f'Welcome, {session["username"]}!'
        return "No session data found."

    @app.get("/delete_session")
    def delete_session():
        session.pop("username", None)
        return "Session data deleted."

    # ---- seed 001: Flask Sessions (setsession / getsession / popsession)
    @app.get("/setsession")
    def setsession():
        session["Username"] = "Admin"
        return "The session has been Set"

    @app.get("/getsession")
    def getsession():
        if "Username" in session:
            username = session["Username"]
            return f"Welcome {username}"
        return "Welcome Anonymous"

    @app.get("/popsession")
    def popsession():
        session.pop("Username", None)
        return "Session Deleted"

    # ---- seeds 002 (login/logout) and 003 (pet name), sharing "/"
    @app.get("/")
    def index():
        # Plain text, one line per seed. Reading the session here also marks
        # it accessed (Vary: Cookie), like the seeds' index views do.
        if "username" in session:
            login_line = f"Logged in as {session['username']}"
        else:
            login_line = "You are not logged in"
        pet_name = session.get("pet_name", "")
        if pet_name:
            pet_line = f"Your pet's name is {pet_name}."
        else:
            pet_line = "I do not know your pet's name."
        return Response(f"{login_line}\n{pet_line}\n", mimetype="text/plain")

    @app.post("/login")
    def login():
        # request.form["username"]: a missing field is a 400, as in the seed.
        session["username"] = request.form["username"]
        return redirect(url_for("index"))

    @app.get("/logout")
    def logout():
        session.pop("username", None)
        return redirect(url_for("index"))

    # A logout as many Flask apps write it: everything goes, then a message.
    @app.get("/logout_with_message")
    def logout_with_message():
        session.clear()
        flash("You are logged out")
        return redirect(url_for("index"))

    @app.get("/petname")
    def pet_name_form():
        return '<form method="POST"><input type="text" name="pet"><input type="submit"></form>'

    @app.post("/petname")
    def pet_name_action():
        session["pet_name"] = request.form.get("pet")
        # Seed 003's "Session Life": any `remember` field makes it permanent.
        if "remember" in request.form:
            session.permanent = True
        return redirect("/")

    # ---- test helpers
    @app.get("/api/session")
    def api_session_get():
        return Response(tagged.dumps(dict(session)), mimetype="application/json")

    @app.post("/api/session")
    def api_session_post():
        try:
            data = tagged.loads(request.get_data(as_text=True))
        except ValueError as exc:
            return Response(f"invalid JSON: {exc}\n", status=400, mimetype="text/plain")
        if not isinstance(data, dict):
            return Response("body must be a JSON object\n", status=400, mimetype="text/plain")
        session.update(data)
        return Response(tagged.dumps(dict(session)), mimetype="application/json")

    @app.post("/api/session/literal")
    def api_session_literal():
        # Values JSON cannot carry, such as dicts with int or bool keys, as a
        # Python literal (ast.literal_eval evaluates nothing else).
        data = ast.literal_eval(request.get_data(as_text=True))
        if not isinstance(data, dict):
            return Response("body must be a dict literal\n", status=400, mimetype="text/plain")
        session.update(data)
        return Response(repr(dict(session)), mimetype="text/plain")

    @app.get("/api/session/repr/<key>")
    def api_session_repr(key: str):
        return Response(repr(session.get(key)), mimetype="text/plain")

    @app.post("/flash")
    def post_flash():
        # No category field flashes with None, as `flash(msg, form.get(...))`
        # does in an app whose form left it out.
        flash(request.form.get("message", ""), request.form.get("category"))
        return "Flashed."

    @app.get("/flashes")
    def get_flashes():
        messages = get_flashed_messages(with_categories=True)
        # str(): a Markup message is sent as its HTML text.
        body = json.dumps([[category, str(message)] for category, message in messages])
        return Response(body, mimetype="application/json")

    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000, help="0 picks a free port")
    args = parser.parse_args()

    app = create_app()
    # make_server (what run_simple uses underneath) binds before we announce
    # readiness, and tells the real port when --port 0 was given. Threaded, no
    # reloader, no debugger.
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"ready http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
