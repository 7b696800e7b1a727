"""OCPI URLs, mounted at /ocpi/. Each module answers with or without a trailing slash (we advertise them with
one; a CPO that joins `<url>/<segment>` or `<url><segment>` reaches the same view)."""

from django.urls import re_path

from . import views

V = r"2\.2\.1"
SEGMENT = r"[^/]{1,100}"

urlpatterns = [
    re_path(r"^versions/?$", views.versions, name="ocpi-versions"),
    re_path(rf"^{V}(?:/details)?/?$", views.version_details, name="ocpi-details"),
    re_path(rf"^{V}/credentials/?$", views.credentials, name="ocpi-credentials"),
    re_path(
        rf"^{V}/commands/+(?P<command>{SEGMENT})/(?P<uid>{SEGMENT})/?$", views.command_result, name="ocpi-commands"
    ),
    re_path(
        rf"^{V}/sessions/+(?P<country_code>[^/]{{1,2}})/(?P<party_id>[^/]{{1,3}})/(?P<session_id>{SEGMENT})/?$",
        views.session,
        name="ocpi-session",
    ),
    re_path(rf"^{V}/cdrs/?$", views.cdrs, name="ocpi-cdrs"),
    re_path(r"^(?P<path>.*)$", views.not_found),
]
