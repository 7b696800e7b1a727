"""The admin of mappings, connector statuses and adapter configs."""

import pytest
from django.test import Client

from evpay.core.models import User
from evpay.core.services import operator_user_create
from infrastructure.models import AdapterConfig, StationMapping
from infrastructure.services import adapter_config_ensure, adapter_config_update
from tests.infrastructure_support import make_mapping
from tests.test_infrastructure_api import SECRET_TOKEN


@pytest.fixture
def superuser_client(db):
    user = User.objects.create_superuser(username="root", password="x", email="root@example.com")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(operator):
    user = operator_user_create(operator=operator, username="ops", password="s3cret-pass!", role="admin")
    User.objects.filter(pk=user.pk).update(is_staff=True)
    client = Client()
    client.force_login(User.objects.get(pk=user.pk))
    return client


@pytest.mark.django_db
class TestInfrastructureAdmin:
    def test_mapping_pages_show_connectors_inline(self, superuser_client, operator):
        mapping = make_mapping(operator)
        assert superuser_client.get("/admin/infrastructure/stationmapping/").status_code == 200
        page = superuser_client.get(f"/admin/infrastructure/stationmapping/{mapping.pk}/change/")
        assert page.status_code == 200
        assert b"IEC_62196_T2_COMBO" in page.content and b"DE*ABC*E1" in page.content
        assert superuser_client.get("/admin/infrastructure/connector/").status_code == 200

    def test_test_connectivity_action_queues_a_test(self, superuser_client, operator):
        mapping = make_mapping(operator)
        response = superuser_client.post("/admin/infrastructure/stationmapping/",
                                         {"action": "test_connectivity", "_selected_action": [mapping.pk]})
        assert response.status_code == 302
        assert StationMapping.objects.get(pk=mapping.pk).connectivity_test_status == "pending"

    def test_delete_action_soft_deletes(self, superuser_client, operator):
        mapping = make_mapping(operator)
        superuser_client.post("/admin/infrastructure/stationmapping/",
                              {"action": "delete_mappings", "_selected_action": [mapping.pk]})
        assert StationMapping.objects.get(pk=mapping.pk).deleted_at is not None

    def test_credentials_are_write_only(self, superuser_client, operator):
        adapter_config_update(operator=operator, adapter_type="simulator", credentials={"token": SECRET_TOKEN})
        config = AdapterConfig.objects.get(operator=operator, adapter_type="simulator")
        url = f"/admin/infrastructure/adapterconfig/{config.pk}/change/"
        page = superuser_client.get(url)
        assert page.status_code == 200 and SECRET_TOKEN.encode() not in page.content
        assert config.credentials_encrypted.encode() not in page.content
        # Saving without a token keeps the credentials; a new token replaces them.
        form = {"enabled": "on", "base_url": "", "timeout_ms": 1500, "max_retries": 1, "poll_interval_s": 30}
        assert superuser_client.post(url, form).status_code == 302
        config.refresh_from_db()
        assert (config.timeout_ms, config.credentials_set) == (1500, True)
        superuser_client.post(url, {**form, "clear_credentials": "on"})
        config.refresh_from_db()
        assert config.credentials_set is False

    def test_config_form_validates_ranges(self, superuser_client, operator):
        config = adapter_config_ensure(operator_id=operator.pk, adapter_type="simulator")
        url = f"/admin/infrastructure/adapterconfig/{config.pk}/change/"
        page = superuser_client.post(url, {"enabled": "on", "timeout_ms": 50, "max_retries": 1, "poll_interval_s": 30})
        assert page.status_code == 200  # the form again, with its error
        config.refresh_from_db()
        assert config.timeout_ms == 5000

    def test_operator_staff_see_only_their_mappings(self, staff_client, operator, other_operator):
        mine = make_mapping(operator, station_id="MINE")
        theirs = make_mapping(other_operator, station_id="THEIRS")
        page = staff_client.get("/admin/infrastructure/stationmapping/")
        assert b"MINE" in page.content and b"THEIRS" not in page.content
        assert staff_client.get(f"/admin/infrastructure/stationmapping/{theirs.pk}/change/").status_code == 302
        assert staff_client.get(f"/admin/infrastructure/stationmapping/{mine.pk}/change/").status_code == 200
