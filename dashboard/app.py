"""Flask application factory for the dashboard and the metrics API."""

from flask import Flask, jsonify, render_template
from werkzeug.exceptions import HTTPException

from dashboard import api
from wa_analytics.config import Settings, load_settings


def create_app(config: Settings | None = None) -> Flask:
    """Build the app. ``config`` defaults to the environment (see ``wa_analytics.config``)."""
    settings = config or load_settings()
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set; start it with `wa-analytics dashboard`")
    app = Flask(__name__)
    app.extensions["wa_settings"] = settings
    app.register_blueprint(api.blueprint)

    @app.get("/")
    def page():
        return render_template("dashboard.html")

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    @app.errorhandler(HTTPException)
    def json_error(error: HTTPException):
        return jsonify(error=error.name.lower(), reason=error.description), error.code

    return app
