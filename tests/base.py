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


# Model fields no list filters by, whatever the model.
COMMON_UNFILTERED = {
    "id": "an object is fetched by its id (GET /{id})",
    "operator": "every query is cut to the caller's operator",
    "updated_at": "lists filter by creation time (created_after / created_before)",
    "metadata": "the client's free-form data: not a search key, not indexed",
}


class FilterSetTests:
    """In NetBox's spirit: subclasses set `filterset` and `unfiltered` ({model field: why no filter}). A model field
    that has no filter and no reason fails, so a new field gets a filter or a stated reason; a reason for a field
    that has a filter, or that does not exist, fails too."""

    filterset: type | None = None
    unfiltered: dict[str, str] = {}

    def _model_fields(self) -> list[str]:
        model = self.filterset._meta.model
        return [f.name for f in model._meta.get_fields() if not (f.auto_created and not f.concrete)]

    def _filtered_fields(self) -> set[str]:
        names = set()
        for name, declared in self.filterset.base_filters.items():
            for candidate in (name, declared.field_name.split("__")[0]):
                names.add(candidate)
                if candidate.endswith("_id"):  # terminal_id filters the `terminal` foreign key
                    names.add(candidate.removesuffix("_id"))
        return names

    def _reasons(self) -> dict[str, str]:
        return {**COMMON_UNFILTERED, **self.unfiltered}

    def test_every_model_field_has_a_filter_or_a_reason(self):
        assert self.filterset is not None, f"{type(self).__name__} sets no filterset"
        filtered, reasons = self._filtered_fields(), self._reasons()
        missing = [name for name in self._model_fields() if name not in filtered and name not in reasons]
        assert not missing, (
            f"{self.filterset.__name__}: no filter for {missing}; add one, or name the field in `unfiltered` "
            "with the reason it has none"
        )

    def test_every_reason_names_an_unfiltered_field(self):
        fields, filtered = set(self._model_fields()), self._filtered_fields()
        stale = sorted(name for name in self.unfiltered if name not in fields or name in filtered)
        assert not stale, f"{self.filterset.__name__}: `unfiltered` names {stale}, which are filtered or absent"
