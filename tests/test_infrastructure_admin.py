"""The admin of mappings, connector statuses and adapter configs."""

import pytest
from django.contrib.admin.utils import quote
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
        page = superuser_client.get(f"/admin/infrastructure/stationmapping/{quote(mapping.pk)}/change/")
        assert page.status_code == 200
        assert b"IEC_62196_T2_COMBO" in page.content and b"DE*ABC*E1" in page.content
        assert superuser_client.get("/admin/infrastructure/connector/").status_code == 200

    def test_test_connectivity_action_queues_a_test(self, superuser_client, operator):
        mapping = make_mapping(operator)
        response = superuser_client.post(
            "/admin/infrastructure/stationmapping/", {"action": "test_connectivity", "_selected_action": [mapping.pk]}
        )
        assert response.status_code == 302
        assert StationMapping.objects.get(pk=mapping.pk).connectivity_test_status == "pending"

    def test_delete_action_soft_deletes(self, superuser_client, operator):
        mapping = make_mapping(operator)
        superuser_client.post(
            "/admin/infrastructure/stationmapping/", {"action": "delete_mappings", "_selected_action": [mapping.pk]}
        )
        assert StationMapping.objects.get(pk=mapping.pk).deleted_at is not None

    def test_credentials_are_write_only(self, superuser_client, operator):
        adapter_config_update(operator=operator, adapter_type="simulator", credentials={"token": SECRET_TOKEN})
        config = AdapterConfig.objects.get(operator=operator, adapter_type="simulator")
        url = f"/admin/infrastructure/adapterconfig/{quote(config.pk)}/change/"
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
        url = f"/admin/infrastructure/adapterconfig/{quote(config.pk)}/change/"
        page = superuser_client.post(url, {"enabled": "on", "timeout_ms": 50, "max_retries": 1, "poll_interval_s": 30})
        assert page.status_code == 200  # the form again, with its error
        config.refresh_from_db()
        assert config.timeout_ms == 5000

    def test_operator_staff_see_only_their_mappings(self, staff_client, operator, other_operator):
        mine = make_mapping(operator, station_id="MINE")
        theirs = make_mapping(other_operator, station_id="THEIRS")
        page = staff_client.get("/admin/infrastructure/stationmapping/")
        assert b"MINE" in page.content and b"THEIRS" not in page.content
        assert staff_client.get(f"/admin/infrastructure/stationmapping/{quote(theirs.pk)}/change/").status_code == 302
        assert staff_client.get(f"/admin/infrastructure/stationmapping/{quote(mine.pk)}/change/").status_code == 200


def _mapping_form(mapping=None, **fields) -> dict:
    connectors = list(mapping.connectors.order_by("connector_id")) if mapping else []
    data = {
        "station_id": "DE*ADM*S1",
        "adapter_type": "simulator",
        "cpms_station_id": "CP-ADM-1",
        "tariff": "",
        "is_active": "on",
        "metadata": "{}",
        "connectors-TOTAL_FORMS": str(len(connectors) + 1),
        "connectors-INITIAL_FORMS": str(len(connectors)),
        "connectors-MIN_NUM_FORMS": "0",
        "connectors-MAX_NUM_FORMS": "1000",
    }
    for i, connector in enumerate(connectors):
        data.update(
            {
                f"connectors-{i}-id": connector.pk,
                f"connectors-{i}-mapping": mapping.pk,
                f"connectors-{i}-connector_id": connector.connector_id,
                f"connectors-{i}-evse_uid": connector.evse_uid,
                f"connectors-{i}-standard": connector.standard,
                f"connectors-{i}-power_type": connector.power_type,
                f"connectors-{i}-max_power_kw": str(connector.max_power_kw),
            }
        )
    new = len(connectors)
    data.update(
        {
            f"connectors-{new}-connector_id": "9",
            f"connectors-{new}-evse_uid": "DE*ADM*E9",
            f"connectors-{new}-standard": "IEC_62196_T2",
            f"connectors-{new}-power_type": "AC_3_PHASE",
            f"connectors-{new}-max_power_kw": "22",
        }
    )
    data.update(fields)
    return data


@pytest.mark.django_db
class TestMappingFormThroughServices:
    def test_operator_staff_add_a_mapping_with_connectors(self, staff_client, operator):
        response = staff_client.post("/admin/infrastructure/stationmapping/add/", _mapping_form())
        assert response.status_code == 302, response.content.decode()[:2000]
        mapping = StationMapping.objects.get(station_id="DE*ADM*S1")
        assert mapping.operator == operator
        assert list(mapping.connectors.values_list("connector_id", "status")) == [("9", "UNKNOWN")]
        # The service made the adapter's config, as an API create does.
        assert AdapterConfig.objects.filter(operator=operator, adapter_type="simulator").exists()

    def test_a_change_refused_by_the_service_changes_nothing(self, staff_client, operator):
        from tests.charging_support import make_station, make_tariff, start_session

        make_tariff(operator)
        make_station(operator, station_id="DE*ADM*S1")
        session = start_session(operator, station_id="DE*ADM*S1")
        mapping = StationMapping.objects.get(pk=session.mapping_id)
        url = f"/admin/infrastructure/stationmapping/{quote(mapping.pk)}/change/"
        data = _mapping_form(mapping, station_id=mapping.station_id, cpms_station_id="CP-MOVED")
        response = staff_client.post(url, data, follow=True)
        assert "cannot change until it ends" in response.content.decode()
        mapping.refresh_from_db()
        assert mapping.cpms_station_id == "CP-1" and mapping.connectors.count() == 1

    def test_a_change_goes_through(self, staff_client, operator):
        mapping = make_mapping(operator, station_id="DE*ADM*S1")
        url = f"/admin/infrastructure/stationmapping/{quote(mapping.pk)}/change/"
        response = staff_client.post(url, _mapping_form(mapping, cpms_station_id="CP-NEW"), follow=True)
        assert "was changed successfully" in response.content.decode(), [str(m) for m in response.context["messages"]]
        mapping.refresh_from_db()
        assert mapping.cpms_station_id == "CP-NEW"
        assert sorted(mapping.connectors.values_list("connector_id", flat=True)) == ["1", "9"]
