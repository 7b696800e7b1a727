"""Assertions and API test base classes. App tests feed the base classes with data; the classes test
authentication, scopes and tenancy of every endpoint the same way."""


def assert_problem(response, status: int, code: str | None = None):
    """An RFC 9457 problem document with the expected status and code."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.content[:500]}"
    assert response["Content-Type"].startswith("application/problem+json"), response["Content-Type"]
    body = response.json()
    assert body["status"] == status
    assert body["type"].endswith("/" + body["code"])
    assert body["title"] and body["detail"]
    if code is not None:
        assert body["code"] == code, body
    return body


class EndpointAccessTests:
    """Subclasses set `scope_resource` and `endpoints`, and implement `make_object(operator)`.

    `endpoints`: (method, path template with `{id}`, body or None). Every endpoint is checked for:
    401 without credentials, 403 without the needed scope, 404 for another operator's object. The endpoints that
    name an object are those with `{id}`, unless `object_endpoints` lists them (e.g. an object named in the query
    string). A test that checked no endpoint fails: a base class fed with nothing asserts nothing.
    `tests/test_access_coverage.py` checks that every URL of the API is in some subclass's `endpoints`."""

    scope_resource: str = ""
    endpoints: list[tuple[str, str, dict | None]] = []
    object_endpoints: list[tuple[str, str, dict | None]] | None = None

    def make_object(self, operator):
        raise NotImplementedError

    def _call(self, client, method, path, body):
        return (
            getattr(client, method.lower())(path, body, format="json")
            if body is not None
            else getattr(client, method.lower())(path)
        )

    def _paths(self, operator):
        assert self.endpoints, f"{type(self).__name__} names no endpoint: it would check nothing"
        obj = self.make_object(operator)
        return [(m, p.format(id=obj.pk), b) for m, p, b in self.endpoints]

    def test_every_endpoint_requires_credentials(self, anon_client, operator):
        for method, path, body in self._paths(operator):
            assert_problem(self._call(anon_client, method, path, body), 401, "not_authenticated")

    def test_invalid_key_is_rejected(self, anon_client, operator):
        anon_client.credentials(HTTP_X_API_KEY="evp_deadbeef_nope")
        for method, path, body in self._paths(operator):
            assert_problem(self._call(anon_client, method, path, body), 401, "authentication_failed")

    def test_every_endpoint_checks_scope(self, make_client, operator):
        unrelated = "payments:read" if self.scope_resource != "payments" else "terminals:write"
        client = make_client(operator, unrelated)
        read_only = make_client(operator, f"{self.scope_resource}:read")
        for method, path, body in self._paths(operator):
            assert_problem(self._call(client, method, path, body), 403, "insufficient_scope")
            if method != "GET":
                assert_problem(self._call(read_only, method, path, body), 403, "insufficient_scope")

    def test_other_operator_gets_404(self, make_client, operator, other_operator):
        stranger = make_client(other_operator)
        obj = self.make_object(operator)
        named = self.object_endpoints
        if named is None:
            named = [endpoint for endpoint in self.endpoints if "{id}" in endpoint[1]]
        assert named, (
            f"{type(self).__name__} has no endpoint that names an object: list them in `object_endpoints` "
            "(or leave tenancy to the list tests), so that this test checks something"
        )
        for method, template, body in named:
            assert_problem(self._call(stranger, method, template.format(id=obj.pk), body), 404, "not_found")

