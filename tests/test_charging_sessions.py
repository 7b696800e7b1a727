"""Charge sessions through the API and the services, without a worker (the CPMS answers are recorded by
calling the services the worker calls). Worker-driven flows are in test_charging_flow.py."""

from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.test import Client, override_settings
from django.utils import timezone

from charging import services
from charging.models import ChargeSession
from charging.selectors import active_session_count, dashboard_panels, running_sessions
from evpay.core.panels import start_of_today
from evpay.core.services import operator_user_create
from infrastructure.adapters.base import CommandOutcome, CommandResult
from infrastructure.selectors import active_sessions_by_connector
from infrastructure.services import MappingInUse, mapping_delete, simulator_connector_status_set
from payments import services as payment_services
from payments.models import PaymentIntent
from tests.base import EndpointAccessTests, assert_problem
from tests.charging_support import (
    START_URL,
    URL,
    authorized_intent,
    make_station,
    make_tariff,
    make_terminal,
    start_body,
    start_session,
)
from webhooks.models import Event


def events(session_id, type_=None):
    qs = Event.objects.filter(data__object__id=session_id).order_by("created_at")
    return [e.type for e in (qs.filter(type=type_) if type_ else qs)]


def settings_reset_timeout() -> int:
    from django.conf import settings

    return settings.CPMS_CIRCUIT_RESET_TIMEOUT


def ago(**kwargs):
    return timezone.now() - timedelta(**kwargs)


@pytest.fixture
def setup(operator):
    """A default tariff (0.59/kWh, 1.00 fee, 19 % VAT), station DE*EVP*S1 with connector 1, an online terminal."""
    tariff = make_tariff(operator, price_per_kwh="0.59", session_fee="1.00", vat_rate_percent="19")
    mapping = make_station(operator)
    terminal = make_terminal(operator)
    return tariff, mapping, terminal


@pytest.fixture
def started(client, operator, setup):
    """A pending session started through the API; returns (session json, intent)."""
    intent = authorized_intent(operator)
    response = client.post(START_URL, start_body(setup[2], intent), format="json")
    assert response.status_code == 201, response.content
    # Tapped an hour ago, so that the tests' readings may lie in the past.
    ChargeSession.objects.filter(pk=response.json()["id"]).update(created_at=ago(hours=1))
    return client.get(f"{URL}/{response.json()['id']}").json(), intent


def progress(client, session_id, energy_wh, measured_at, **extra):
    return client.put(
        f"{URL}/{session_id}/progress",
        {"energy_wh": energy_wh, "measured_at": measured_at.isoformat(), **extra},
        format="json",
    )


def charging_session(client, started, energy_wh=0, at=None):
    session, intent = started
    response = progress(client, session["id"], energy_wh, at or ago(seconds=30))
    assert response.status_code == 200, response.content
    return response.json(), intent


class TestChargeSessionAccess(EndpointAccessTests):
    scope_resource = "charges"
    endpoints = [
        (
            "POST",
            START_URL,
            {"terminal_id": "trm_x", "station_id": "S", "connector_id": "1", "payment_intent_id": "pi_x"},
        ),
        ("GET", URL, None),
        ("GET", URL + "/{id}", None),
        ("PUT", URL + "/{id}/progress", {"energy_wh": 1, "measured_at": "2026-01-01T00:00:00Z"}),
        ("POST", URL + "/{id}/complete", {}),
    ]

    def make_object(self, operator):
        make_tariff(operator)
        terminal = make_terminal(operator, serial=f"SN-{ChargeSession.objects.count()}")
        make_station(operator, station_id=f"S-{ChargeSession.objects.count()}")
        mapping = operator.station_mappings.latest("created_at")
        return services.charge_session_start(
            operator=operator,
            terminal_id=terminal.pk,
            station_id=mapping.station_id,
            connector_id="1",
            payment_intent_id=authorized_intent(operator).pk,
        )


@pytest.mark.django_db
class TestStart:
    def test_start_is_pending_with_the_copied_tariff(self, client, operator, setup, django_capture_on_commit_callbacks):
        tariff, mapping, terminal = setup
        intent = authorized_intent(operator, amount=7000)
        with django_capture_on_commit_callbacks() as callbacks:
            response = client.post(START_URL, start_body(terminal, intent, metadata={"bay": "3"}), format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["id"].startswith("chs_") and body["object"] == "charge_session"
        assert body["status"] == "pending"
        assert (body["terminal_id"], body["station_id"], body["connector_id"], body["mapping_id"]) == (
            terminal.pk,
            "DE*EVP*S1",
            "1",
            mapping.pk,
        )
        assert (body["payment_intent_id"], body["currency"], body["preauth_amount"]) == (intent.pk, "EUR", 7000)
        assert body["tariff"] == {
            "price_per_kwh": "0.59",
            "price_per_minute": "0.00",
            "session_fee": "1.00",
            "vat_rate_percent": "19.00",
        }
        # The session fee is owed from the start: 1.00 + 19 % VAT.
        assert body["cost"] == {"energy": 0, "time": 0, "session_fee": 100, "subtotal": 100, "vat": 19, "total": 119}
        assert body["energy_wh"] == 0 and body["amount_captured"] == 0 and body["stop_reason"] is None
        assert body["metadata"] == {"bay": "3"} and body["started_at"] is None
        assert len(callbacks) == 1  # the start command, enqueued after commit
        assert client.get(f"/v1/payment-intents/{intent.pk}").json()["charge_session_id"] == body["id"]
        assert running_sessions([mapping.pk]) == {(mapping.pk, "1"): body["id"]}
        assert active_sessions_by_connector(mapping_ids=[mapping.pk]) == {(mapping.pk, "1"): body["id"]}

    def test_tariff_edit_does_not_change_a_running_session(self, client, started, setup):
        services.tariff_update(tariff=setup[0], price_per_kwh=5, session_fee=0)
        assert client.get(f"{URL}/{started[0]['id']}").json()["tariff"]["price_per_kwh"] == "0.59"

    def test_bad_input(self, client, operator, setup):
        body = assert_problem(client.post(START_URL, {}, format="json"), 400, "validation_error")
        assert set(body["errors"]) == {"terminal_id", "station_id", "connector_id", "payment_intent_id"}
        intent = authorized_intent(operator)
        for override, field in (
            ({"terminal_id": "trm_nope"}, "terminal_id"),
            ({"payment_intent_id": "pi_nope"}, "payment_intent_id"),
            ({"connector_id": "9"}, "connector_id"),
            ({"station_id": "nope"}, "connector_id"),
            ({"metadata": ["x"]}, "metadata"),
        ):
            body = assert_problem(
                client.post(START_URL, {**start_body(setup[2], intent), **override}, format="json"),
                400,
                "validation_error",
            )
            assert field in body["errors"]
        assert ChargeSession.objects.count() == 0

    def test_other_operators_objects_are_unknown(self, client, operator, other_operator, setup):
        make_tariff(other_operator)
        make_station(other_operator, station_id="DE*OTH*S1")
        their_terminal = make_terminal(other_operator)
        their_intent = authorized_intent(other_operator)
        mine = authorized_intent(operator)
        for body, field in (
            (start_body(their_terminal, mine), "terminal_id"),
            (start_body(setup[2], their_intent), "payment_intent_id"),
            (start_body(setup[2], mine, station_id="DE*OTH*S1"), "connector_id"),
        ):
            assert field in assert_problem(client.post(START_URL, body, format="json"), 400)["errors"]

    def test_inactive_or_deleted_mapping_is_400(self, client, operator, setup):
        from infrastructure.services import mapping_update

        mapping_update(mapping=setup[1], is_active=False)
        body = start_body(setup[2], authorized_intent(operator))
        assert_problem(client.post(START_URL, body, format="json"), 400, "validation_error")

    @pytest.mark.parametrize(
        "make_unusable",
        [
            pytest.param(lambda i: i, id="requires_authorization"),
            pytest.param(
                lambda i: payment_services.payment_intent_void(
                    intent=payment_services.payment_intent_authorize(intent=i, token="tok_visa")
                ),
                id="voided",
            ),
            pytest.param(
                lambda i: payment_services.payment_intent_capture(
                    intent=payment_services.payment_intent_authorize(intent=i, token="tok_visa")
                ),
                id="captured",
            ),
        ],
    )
    def test_intent_not_authorized(self, client, operator, setup, make_unusable):
        intent = make_unusable(payment_services.payment_intent_create(operator=operator, amount=5000, currency="EUR"))
        before = PaymentIntent.objects.get(pk=intent.pk).status
        assert_problem(
            client.post(START_URL, start_body(setup[2], intent), format="json"), 409, "payment_intent_unusable"
        )
        assert PaymentIntent.objects.get(pk=intent.pk).status == before
        assert ChargeSession.objects.count() == 0

    def test_intent_expired_authorization(self, client, operator, setup):
        intent = authorized_intent(operator)
        PaymentIntent.objects.filter(pk=intent.pk).update(capture_before=ago(seconds=1))
        assert_problem(
            client.post(START_URL, start_body(setup[2], intent), format="json"), 409, "payment_intent_unusable"
        )
        assert PaymentIntent.objects.get(pk=intent.pk).status == "authorized"

    def test_intent_with_a_processor_call_in_progress(self, client, operator, setup):
        intent = authorized_intent(operator)
        PaymentIntent.objects.filter(pk=intent.pk).update(
            processing_action="void", processing_started_at=timezone.now()
        )
        body = assert_problem(
            client.post(START_URL, start_body(setup[2], intent), format="json"), 409, "payment_intent_unusable"
        )
        assert body["detail"] == f"Payment intent {intent.pk} has a void in progress."
        assert ChargeSession.objects.count() == 0

    def test_intent_already_used(self, client, operator, setup, started):
        make_station(operator, station_id="DE*EVP*S2", cpms_station_id="CP-2")
        body = start_body(setup[2], started[1], station_id="DE*EVP*S2")
        assert_problem(client.post(START_URL, body, format="json"), 409, "payment_intent_unusable")
        assert ChargeSession.objects.count() == 1

    def test_intent_currency_differs_from_tariff(self, client, operator, setup):
        intent = authorized_intent(operator, currency="JPY")
        assert_problem(
            client.post(START_URL, start_body(setup[2], intent), format="json"), 409, "payment_intent_unusable"
        )

    def test_intent_of_another_terminal(self, client, operator, setup):
        other_terminal = make_terminal(operator, serial="SN-2")
        intent = authorized_intent(operator, terminal=other_terminal)
        assert_problem(
            client.post(START_URL, start_body(setup[2], intent), format="json"), 409, "payment_intent_unusable"
        )

    def test_connector_busy(self, client, operator, setup, started):
        second = authorized_intent(operator)
        assert_problem(
            client.post(START_URL, start_body(setup[2], second), format="json"), 409, "connector_unavailable"
        )
        assert PaymentIntent.objects.get(pk=second.pk).status == "authorized"
        assert Event.objects.filter(type__startswith="charge.").count() == 0

    @pytest.mark.parametrize("raw_status", ["Faulted", "Unavailable", "Charging", "Reserved"])
    def test_connector_out_of_order_or_occupied(self, client, operator, setup, raw_status):
        from infrastructure.models import Connector
        from infrastructure.statuses import to_ocpi_status

        # What the status poller records from the CPMS report (OCPP 1.6 value mapped to OCPI).
        simulator_connector_status_set(cpms_station_id="CP-1", connector_id="1", raw_status=raw_status)
        Connector.objects.filter(mapping=setup[1]).update(
            status=to_ocpi_status(protocol="ocpp1.6", raw_status=raw_status)
        )
        intent = authorized_intent(operator)
        assert_problem(
            client.post(START_URL, start_body(setup[2], intent), format="json"), 409, "connector_unavailable"
        )
        assert PaymentIntent.objects.get(pk=intent.pk).status == "authorized"

    @pytest.mark.parametrize("status", ["maintenance", "decommissioned"])
    def test_terminal_unavailable(self, client, operator, setup, status):
        setup[2].status = status
        setup[2].save()
        intent = authorized_intent(operator)
        assert_problem(client.post(START_URL, start_body(setup[2], intent), format="json"), 409, "terminal_unavailable")
        assert PaymentIntent.objects.get(pk=intent.pk).status == "authorized"

    @pytest.mark.parametrize("status", ["online", "offline", "faulted"])
    def test_terminal_other_statuses_may_start(self, client, operator, setup, status):
        setup[2].status = status
        setup[2].save()
        response = client.post(START_URL, start_body(setup[2], authorized_intent(operator)), format="json")
        assert response.status_code == 201

    @pytest.mark.parametrize("state", ["disabled", "circuit_open"])
    def test_adapter_disabled_or_circuit_open_is_503_and_creates_nothing(self, client, operator, setup, state):
        from infrastructure.models import AdapterConfig
        from infrastructure.services import adapter_config_ensure

        config = adapter_config_ensure(operator_id=operator.pk, adapter_type="simulator")
        change = {"enabled": False} if state == "disabled" else {"circuit_state": "open", "circuit_opened_at": ago()}
        AdapterConfig.objects.filter(pk=config.pk).update(**change)
        intent = authorized_intent(operator)
        response = client.post(START_URL, start_body(setup[2], intent), format="json")
        assert "retry later" in assert_problem(response, 503, "cpms_unavailable")["detail"]
        assert not ChargeSession.objects.exists() and not Event.objects.filter(type__startswith="charge.").exists()
        assert PaymentIntent.objects.get(pk=intent.pk).status == "authorized"
        # A circuit open past its reset timeout lets the start through (it is the trial call).
        AdapterConfig.objects.filter(pk=config.pk).update(
            enabled=True, circuit_opened_at=ago(seconds=settings_reset_timeout() + 1)
        )
        assert client.post(START_URL, start_body(setup[2], intent), format="json").status_code == 201

    def test_no_tariff_is_409(self, client, operator):
        make_station(operator)
        terminal = make_terminal(operator)
        assert_problem(
            client.post(START_URL, start_body(terminal, authorized_intent(operator)), format="json"),
            409,
            "invalid_state",
        )

    def test_mapping_cannot_be_deleted_while_a_session_runs(self, started, setup):
        with pytest.raises(MappingInUse):
            mapping_delete(mapping=setup[1])

    def test_idempotent_replay(self, client, operator, setup):
        body = start_body(setup[2], authorized_intent(operator))
        first = client.post(START_URL, body, format="json", HTTP_IDEMPOTENCY_KEY="start-1")
        again = client.post(START_URL, body, format="json", HTTP_IDEMPOTENCY_KEY="start-1")
        assert again.status_code == 201 and again.json() == first.json()
        assert again["Idempotent-Replayed"] == "true" and ChargeSession.objects.count() == 1


@pytest.mark.django_db
class TestCpmsAnswers:
    def test_accepted_moves_to_charging_with_event(self, started):
        session = ChargeSession.objects.get(pk=started[0]["id"])
        session = services.charge_session_start_command_send(session=session)
        assert session.status == "charging" and session.cpms_session_id.startswith("SIM-")
        assert session.started_at is not None
        assert events(session.pk) == ["charge.started"]
        # A redelivered task changes nothing.
        assert services.charge_session_start_command_send(session=session).status == "charging"
        assert events(session.pk) == ["charge.started"]

    def test_a_timed_out_start_waits_for_the_cpms(self, operator):
        make_tariff(operator)
        make_station(operator, cpms_station_id="SIM-TIMEOUT-1")
        session = services.charge_session_start_command_send(session=start_session(operator))
        assert (session.status, session.stop_reason) == ("pending", None)  # it may have arrived: no verdict yet

    def test_rejected_fails_and_voids(self, client, operator):
        make_tariff(operator)
        make_station(operator, cpms_station_id="SIM-REJECT-1")
        intent = authorized_intent(operator)
        session = start_session(operator, intent=intent)
        session = services.charge_session_start_command_send(session=session)
        assert (session.status, session.stop_reason) == ("failed", "cpms_rejected")
        intent.refresh_from_db()
        assert (intent.status, intent.void_reason, intent.amount_capturable) == ("voided", "session_failed", 0)
        assert events(session.pk) == ["charge.failed"]
        assert Event.objects.filter(type="payment_intent.voided", data__object__id=intent.pk).count() == 1
        assert client.get(f"{URL}/{session.pk}").json()["amount_captured"] == 0

    def test_a_start_that_may_have_arrived_is_not_retried(self, operator):
        """A CPMS failure after the request left (the simulator's SIM-FAIL is a 5xx): the task ends without a
        retry; the session waits for the CPMS or the start timeout."""
        from charging.tasks import charge_session_send_start
        from infrastructure.models import AdapterCall

        make_tariff(operator)
        make_station(operator, cpms_station_id="SIM-FAIL-1")
        session = start_session(operator)
        result = charge_session_send_start.apply(args=[session.pk])
        assert result.state == "SUCCESS" and result.result is None
        assert AdapterCall.objects.filter(operation="start_session").count() == 1
        session.refresh_from_db()
        assert session.status == "pending"

    def test_only_a_command_that_never_left_is_retried(self):
        from types import SimpleNamespace

        from celery.exceptions import Retry

        from charging.tasks import _retry_unsent, charge_session_send_start
        from infrastructure.adapters.base import AdapterUnavailable

        class Task:
            request = SimpleNamespace(retries=0)

            def retry(self, countdown):
                return Retry("again", when=countdown)

        for reason in ("circuit_open", "disabled"):
            with pytest.raises(Retry):
                _retry_unsent(Task(), "chs_x", "Start", AdapterUnavailable("no", reason=reason))
        with pytest.raises(Retry):  # connection refused
            _retry_unsent(Task(), "chs_x", "Start", AdapterUnavailable("no", reason="failure", not_sent=True))
        for reason in ("failure", "timeout"):  # a 5xx, a malformed answer, no answer: it may have arrived
            assert _retry_unsent(Task(), "chs_x", "Start", AdapterUnavailable("no", reason=reason)) is None
        # Nor is a command redelivered after a worker died: its message was acknowledged when it was received.
        from charging.tasks import charge_session_send_stop

        assert charge_session_send_start.acks_late is False and charge_session_send_stop.acks_late is False

    def test_cpms_unreachable_raises_for_retry_and_leaves_pending(self, operator):
        from infrastructure.adapters.base import AdapterUnavailable

        make_tariff(operator)
        make_station(operator, cpms_station_id="SIM-FAIL-1")
        session = start_session(operator)
        with pytest.raises(AdapterUnavailable):
            services.charge_session_start_command_send(session=session)
        session.refresh_from_db()
        assert session.status == "pending" and events(session.pk) == []

    def test_late_acceptance_after_failure_sends_a_stop(self, started, django_capture_on_commit_callbacks):
        session = ChargeSession.objects.get(pk=started[0]["id"])
        services.charge_session_fail(session=session, stop_reason="cpms_timeout")
        with django_capture_on_commit_callbacks() as callbacks:
            session = services.charge_session_start_answer_record(
                session=session, result=CommandResult(CommandOutcome.ACCEPTED, cpms_session_id="SIM-late")
            )
        assert session.status == "failed" and len(callbacks) == 1
        assert events(session.pk) == ["charge.failed"]

    def test_late_rejection_of_a_charging_session_changes_nothing(self, client, started):
        session, _ = charging_session(client, started, 100)
        result = services.charge_session_start_answer_record(
            session=ChargeSession.objects.get(pk=session["id"]), result=CommandResult(CommandOutcome.REJECTED)
        )
        assert result.status == "charging"


@pytest.mark.django_db
class TestProgress:
    def test_first_reading_starts_and_costs_are_recomputed(self, client, started):
        session_id = started[0]["id"]
        measured = ago(seconds=10)
        response = progress(client, session_id, 12345, measured, power_kw=22.5)
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["status"] == "charging" and body["energy_wh"] == 12345 and body["power_kw"] == 22.5
        # 12.345 kWh * 0.59 = 7.28355 + 1.00 = 8.28355 -> 828; VAT 19 % = 157.32 -> 157.
        assert body["cost"] == {"energy": 728, "time": 0, "session_fee": 100, "subtotal": 828, "vat": 157, "total": 985}
        assert events(session_id) == ["charge.started"]

    def test_time_is_billed_from_the_start(self, client, operator):
        make_tariff(operator, price_per_kwh="0", price_per_minute="0.10", vat_rate_percent="0")
        make_station(operator)
        session = start_session(operator)
        start = ago(minutes=20)
        ChargeSession.objects.filter(pk=session.pk).update(created_at=start - timedelta(seconds=5))
        progress(client, session.pk, 0, start)
        body = progress(client, session.pk, 5000, start + timedelta(seconds=630)).json()
        # 10.5 min * 0.10 = 1.05
        assert body["duration_seconds"] == 630 and body["cost"]["total"] == 105

    def test_billed_time_never_starts_before_the_session_was_created(self, client, started):
        body = progress(client, started[0]["id"], 100, ago(hours=2)).json()
        assert body["started_at"] == started[0]["created_at"] and body["duration_seconds"] == 0

    def test_older_reading_is_ignored(self, client, started):
        session, _ = charging_session(client, started, 1000, ago(seconds=20))
        response = progress(client, session["id"], 5000, ago(seconds=40))
        assert response.status_code == 200 and response.json()["energy_wh"] == 1000
        assert response.json()["updated_at"] == session["updated_at"]

    def test_duplicate_reading_is_ignored(self, client, started):
        at = ago(seconds=20)
        session, _ = charging_session(client, started, 1000, at)
        assert progress(client, session["id"], 9000, at).json()["energy_wh"] == 1000

    def test_decreasing_energy_is_400(self, client, started):
        session, _ = charging_session(client, started, 1000, ago(seconds=20))
        body = assert_problem(progress(client, session["id"], 999, ago(seconds=10)), 400, "energy_decreased")
        assert "energy_wh" in body["errors"]
        assert client.get(f"{URL}/{session['id']}").json()["energy_wh"] == 1000

    def test_wrong_state_is_409(self, client, started):
        session, _ = charging_session(client, started, 1000)
        client.post(f"{URL}/{session['id']}/complete", {}, format="json")
        assert_problem(progress(client, session["id"], 2000, ago(seconds=1)), 409, "invalid_state")

    @pytest.mark.parametrize(
        "body,field",
        [
            ({"energy_wh": -1, "measured_at": "2026-01-01T00:00:00Z"}, "energy_wh"),
            ({"energy_wh": 1.5, "measured_at": "2026-01-01T00:00:00Z"}, "energy_wh"),
            ({"energy_wh": "x", "measured_at": "2026-01-01T00:00:00Z"}, "energy_wh"),
            ({"energy_wh": 1, "measured_at": "yesterday"}, "measured_at"),
            ({"energy_wh": 1}, "measured_at"),
            ({"measured_at": "2026-01-01T00:00:00Z"}, "energy_wh"),
            ({"energy_wh": 1, "measured_at": "2026-01-01T00:00:00Z", "power_kw": -3}, "power_kw"),
            ({"energy_wh": 1, "measured_at": "2999-01-01T00:00:00Z"}, "measured_at"),
        ],
    )
    def test_bad_input_is_400(self, client, started, body, field):
        response = client.put(f"{URL}/{started[0]['id']}/progress", body, format="json")
        assert field in assert_problem(response, 400, "validation_error")["errors"]
        assert client.get(f"{URL}/{started[0]['id']}").json()["status"] == "pending"

    def test_cost_cap_moves_to_stopping(self, client, operator, django_capture_on_commit_callbacks):
        make_tariff(operator, price_per_kwh="0.50", vat_rate_percent="0")
        make_station(operator)
        intent = authorized_intent(operator, amount=1000)
        session = start_session(operator, intent=intent)
        progress(client, session.pk, 19000, ago(seconds=30))  # 9.50: below the 10.00 cap
        with django_capture_on_commit_callbacks() as callbacks:
            body = progress(client, session.pk, 20000, ago(seconds=20)).json()  # 10.00: the cap
        assert (body["status"], body["stop_reason"]) == ("stopping", "cost_cap_reached")
        assert len(callbacks) == 1  # the stop command
        assert events(session.pk) == ["charge.started", "charge.cost_cap_reached"]
        # Readings keep coming while the charger stops; no second cap event.
        body = progress(client, session.pk, 21000, ago(seconds=10)).json()
        assert body["status"] == "stopping" and body["cost"]["total"] == 1050
        body = client.post(f"{URL}/{session.pk}/complete", {"stop_reason": "completed"}, format="json").json()
        assert (body["status"], body["stop_reason"], body["amount_captured"]) == ("completed", "cost_cap_reached", 1000)
        intent.refresh_from_db()
        assert (intent.status, intent.amount_captured) == ("captured", 1000)


@pytest.mark.django_db
class TestComplete:
    def test_complete_captures_the_total(self, client, started):
        session, intent = charging_session(client, started, 12345, ago(seconds=5))
        response = client.post(f"{URL}/{session['id']}/complete", {"stop_reason": "ev_disconnected"}, format="json")
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["status"], body["stop_reason"]) == ("completed", "ev_disconnected")
        assert body["cost"]["total"] == 985 and body["amount_captured"] == 985 and body["completed_at"]
        intent.refresh_from_db()
        assert (intent.status, intent.amount_captured) == ("captured", 985)
        assert events(session["id"]) == ["charge.started", "charge.completed"]
        assert_problem(client.post(f"{URL}/{session['id']}/complete", {}, format="json"), 409, "invalid_state")
        assert events(session["id"], "charge.completed") == ["charge.completed"]

    def test_final_energy_and_end_time(self, client, operator):
        make_tariff(operator, price_per_kwh="0.40", price_per_minute="0.02", vat_rate_percent="21")
        make_station(operator)
        intent = authorized_intent(operator)
        session = start_session(operator, intent=intent)
        start = ago(hours=1)
        ChargeSession.objects.filter(pk=session.pk).update(created_at=start)
        progress(client, session.pk, 0, start)
        body = client.post(
            f"{URL}/{session.pk}/complete",
            {"energy_wh": 30000, "ended_at": (start + timedelta(minutes=45)).isoformat()},
            format="json",
        ).json()
        # 30 kWh * 0.40 = 12.00; 45 min * 0.02 = 0.90 -> 1290; VAT 21 % = 270.9 -> 271 -> 1561.
        assert body["duration_seconds"] == 2700 and body["cost"]["total"] == 1561
        assert body["amount_captured"] == 1561 and body["stop_reason"] == "completed"

    def test_zero_total_voids(self, client, operator):
        make_tariff(operator, price_per_kwh="0.59", session_fee="0")
        make_station(operator)
        intent = authorized_intent(operator)
        session = start_session(operator, intent=intent)
        ChargeSession.objects.filter(pk=session.pk).update(created_at=ago(minutes=1))
        at = ago(seconds=5)
        progress(client, session.pk, 0, at)
        body = client.post(f"{URL}/{session.pk}/complete", {"ended_at": at.isoformat()}, format="json").json()
        assert body["status"] == "completed" and body["amount_captured"] == 0
        intent.refresh_from_db()
        assert (intent.status, intent.void_reason) == ("voided", "abandoned")

    def test_pending_cannot_be_completed(self, client, started):
        assert_problem(client.post(f"{URL}/{started[0]['id']}/complete", {}, format="json"), 409, "invalid_state")

    def test_bad_input(self, client, started):
        session, _ = charging_session(client, started, 5000, ago(seconds=30))
        url = f"{URL}/{session['id']}/complete"
        for body, field, code in (
            ({"energy_wh": 10}, "energy_wh", "energy_decreased"),
            ({"stop_reason": "timeout"}, "stop_reason", "validation_error"),
            ({"ended_at": "soon"}, "ended_at", "validation_error"),
            ({"ended_at": "2999-01-01T00:00:00Z"}, "ended_at", "validation_error"),
            ({"ended_at": ago(days=1).isoformat()}, "ended_at", "validation_error"),
        ):
            assert field in assert_problem(client.post(url, body, format="json"), 400, code)["errors"]
        assert client.get(f"{URL}/{session['id']}").json()["status"] == "charging"

    @override_settings(PAYMENT_SIMULATOR_FAIL=["capture"])
    def test_failed_capture_leaves_completed_and_authorized(self, client, started, django_capture_on_commit_callbacks):
        session, intent = charging_session(client, started, 12345, ago(seconds=5))
        with django_capture_on_commit_callbacks() as callbacks:
            response = client.post(f"{URL}/{session['id']}/complete", {}, format="json")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "completed" and body["amount_captured"] == 0
        assert len(callbacks) == 1  # the retry
        intent.refresh_from_db()
        assert intent.status == "authorized" and intent.processing_action is None
        # The retrying task captures once the processor is back.
        with override_settings(PAYMENT_SIMULATOR_FAIL=[]):
            settled = services.charge_session_payment_settle(
                session=ChargeSession.objects.get(pk=body["id"]), schedule_retry=False
            )
        assert settled.amount_captured == 985
        intent.refresh_from_db()
        assert (intent.status, intent.amount_captured) == ("captured", 985)

    def test_settle_records_a_capture_made_by_an_interrupted_run(self, client, started):
        session, intent = charging_session(client, started, 12345, ago(seconds=5))
        with override_settings(PAYMENT_SIMULATOR_FAIL=["capture"]):
            client.post(f"{URL}/{session['id']}/complete", {}, format="json")
        # A run that captured and died before writing amount_captured: the next run writes it, capturing nothing.
        payment_services.payment_intent_capture(intent=intent, amount_to_capture=985)
        assert ChargeSession.objects.get(pk=session["id"]).amount_captured == 0
        settled = services.charge_session_payment_settle(
            session=ChargeSession.objects.get(pk=session["id"]), schedule_retry=False
        )
        assert settled.amount_captured == 985 and settled.payment_intent.status == "captured"
        assert Event.objects.filter(type="payment_intent.captured", data__object__id=intent.pk).count() == 1

    def test_settle_gives_up_after_authorization_expired(self, client, started):
        session, intent = charging_session(client, started, 12345, ago(seconds=5))
        with override_settings(PAYMENT_SIMULATOR_FAIL=["capture"]):
            client.post(f"{URL}/{session['id']}/complete", {}, format="json")
        PaymentIntent.objects.filter(pk=intent.pk).update(capture_before=ago(seconds=1))
        settled = services.charge_session_payment_settle(
            session=ChargeSession.objects.get(pk=session["id"]), schedule_retry=False
        )
        assert settled.amount_captured == 0
        assert PaymentIntent.objects.get(pk=intent.pk).status == "authorized"  # the expiry job releases it


@pytest.mark.django_db
class TestPeriodicJobs:
    def test_pending_past_start_timeout_fails_and_voids(self, started):
        session, intent = started
        ChargeSession.objects.filter(pk=session["id"]).update(created_at=ago(seconds=110))
        assert services.charge_sessions_fail_unstarted() == 0
        ChargeSession.objects.filter(pk=session["id"]).update(created_at=ago(seconds=121))
        assert services.charge_sessions_fail_unstarted() == 1
        failed = ChargeSession.objects.get(pk=session["id"])
        assert (failed.status, failed.stop_reason) == ("failed", "cpms_timeout")
        intent.refresh_from_db()
        assert (intent.status, intent.void_reason) == ("voided", "session_failed")
        assert events(session["id"]) == ["charge.failed"]
        assert services.charge_sessions_fail_unstarted() == 0

    @override_settings(CHARGE_START_TIMEOUT=10)
    def test_start_timeout_setting(self, started):
        ChargeSession.objects.filter(pk=started[0]["id"]).update(created_at=ago(seconds=11))
        assert services.charge_sessions_fail_unstarted() == 1

    def test_stale_session_completed_with_timeout_and_captured(self, client, started):
        last = ago(minutes=31)
        session, intent = charging_session(client, started, 12345, last)
        assert services.charge_sessions_complete_stale() == 1
        done = ChargeSession.objects.get(pk=session["id"])
        assert (done.status, done.stop_reason, done.completed_at) == ("completed", "timeout", last)
        assert done.amount_captured == 985
        intent.refresh_from_db()
        assert (intent.status, intent.amount_captured) == ("captured", 985)
        assert events(session["id"]) == ["charge.started", "charge.completed"]

    def test_reading_before_the_cpms_acceptance_is_not_stale_before_the_start_is(self, operator):
        make_tariff(operator)
        make_station(operator)
        session = start_session(operator)
        services.charge_session_start_answer_record(session=session, result=CommandResult(CommandOutcome.ACCEPTED))
        ChargeSession.objects.filter(pk=session.pk).update(started_at=ago(minutes=29), last_progress_at=ago(minutes=31))
        assert services.charge_sessions_complete_stale() == 0
        ChargeSession.objects.filter(pk=session.pk).update(started_at=ago(minutes=31))
        assert services.charge_sessions_complete_stale() == 1
        done = ChargeSession.objects.get(pk=session.pk)
        assert (done.status, done.stop_reason) == ("completed", "timeout")
        assert done.completed_at == done.started_at

    def test_recent_session_is_not_stale(self, client, started):
        charging_session(client, started, 100, ago(minutes=29))
        assert services.charge_sessions_complete_stale() == 0

    @override_settings(PAYMENT_SIMULATOR_FAIL=["void"])
    def test_failed_void_is_retried(self, started, django_capture_on_commit_callbacks):
        session, intent = started
        ChargeSession.objects.filter(pk=session["id"]).update(created_at=ago(minutes=5))
        with django_capture_on_commit_callbacks() as callbacks:
            services.charge_sessions_fail_unstarted()
        assert len(callbacks) == 2  # a stop (the start may have arrived); the retry
        intent.refresh_from_db()
        assert intent.status == "authorized"
        with override_settings(PAYMENT_SIMULATOR_FAIL=[]):
            services.charge_session_payment_settle(session=ChargeSession.objects.get(pk=session["id"]))
        intent.refresh_from_db()
        assert (intent.status, intent.void_reason) == ("voided", "session_failed")


@pytest.mark.django_db
class TestListAndRead:
    def test_filters(self, client, operator, other_client, setup):
        first = start_session(operator, terminal=setup[2])
        make_station(operator, station_id="DE*EVP*S2", cpms_station_id="CP-2")
        terminal2 = make_terminal(operator, serial="SN-2")
        second = start_session(operator, terminal=terminal2, station_id="DE*EVP*S2")
        services.charge_session_fail(session=second, stop_reason="cpms_rejected")

        def ids(**query):
            response = client.get(URL, query)
            assert response.status_code == 200, response.content
            return [s["id"] for s in response.json()["results"]]

        assert ids() == [second.pk, first.pk]
        assert ids(status="failed") == [second.pk]
        assert ids(terminal_id=setup[2].pk) == [first.pk]
        assert ids(station_id="DE*EVP*S2") == [second.pk]
        assert ids(payment_intent_id=first.payment_intent_id) == [first.pk]
        assert ids(created_after=ago(minutes=1).isoformat(), created_before=timezone.now().isoformat()) == [
            second.pk,
            first.pk,
        ]
        assert ids(created_before=ago(minutes=1).isoformat()) == []
        assert other_client.get(URL).json()["results"] == []
        assert_problem(client.get(URL, {"status": "bogus"}), 400, "validation_error")
        assert_problem(client.get(URL, {"created_after": "yesterday"}), 400, "validation_error")
        assert_problem(client.get(f"{URL}/chs_nope"), 404, "not_found")

    def test_selectors(self, operator, other_operator, setup):
        start_session(operator, terminal=setup[2])
        assert active_session_count(operator.pk) == 1 and active_session_count(other_operator.pk) == 0
        assert active_session_count() == 1
        panel = dashboard_panels(operator_id=operator.pk, since=start_of_today())[0]
        assert dict(panel.rows)["Active now"] == 1 and dict(panel.rows)["Started today"] == 1

    def test_payment_intent_list_query_count_does_not_grow(
        self, client, operator, setup, django_assert_max_num_queries
    ):
        for _ in range(5):
            session = services.charge_session_start(
                operator=operator,
                terminal_id=setup[2].pk,
                station_id="DE*EVP*S1",
                connector_id="1",
                payment_intent_id=authorized_intent(operator).pk,
            )
            services.charge_session_fail(session=session, stop_reason="cpms_rejected")
        with django_assert_max_num_queries(6):
            body = client.get("/v1/payment-intents").json()
        assert sum(1 for i in body["results"] if i["charge_session_id"]) == 5


@pytest.mark.django_db
class TestAdmin:
    def test_complete_now_action_and_cost_breakdown(self, client, operator, started):
        session, intent = charging_session(client, started, 12345, ago(seconds=5))
        user = operator_user_create(operator=operator, username="staff", password="pw-123456", role="admin")
        web = Client()
        web.force_login(user)
        page = web.get("/admin/charging/chargesession/?status__exact=charging")
        assert page.status_code == 200 and session["id"] in page.content.decode()
        detail = web.get(f"/admin/charging/chargesession/{quote(session['id'])}/change/").content.decode()
        assert "subtotal: 8.28 EUR" in detail and "VAT: 1.57 EUR" in detail
        response = web.post(
            "/admin/charging/chargesession/", {"action": "complete_now", "_selected_action": [session["id"]]}
        )
        assert response.status_code == 302
        done = ChargeSession.objects.get(pk=session["id"])
        assert (done.status, done.stop_reason, done.amount_captured) == ("completed", "stopped_by_operator", 985)
        # Completing again reports the error per row and changes nothing.
        web.post("/admin/charging/chargesession/", {"action": "complete_now", "_selected_action": [session["id"]]})
        assert events(session["id"], "charge.completed") == ["charge.completed"]

    def test_viewer_has_no_actions(self, operator):
        user = operator_user_create(operator=operator, username="viewer", password="pw-123456", role="viewer")
        web = Client()
        web.force_login(user)
        assert "complete_now" not in web.get("/admin/charging/chargesession/").content.decode()


@pytest.mark.django_db
class TestIntentHeldBySession:
    """The payment intent of a running session is the session's: the payments API cannot settle it early."""

    @pytest.mark.parametrize("action", ["capture", "void"])
    def test_capture_or_void_while_the_session_runs_is_409(self, client, started, action):
        session, intent = started
        response = client.post(f"/v1/payment-intents/{intent.pk}/{action}", {}, format="json")
        body = assert_problem(response, 409, "invalid_state")
        assert session["id"] in body["detail"]
        assert PaymentIntent.objects.get(pk=intent.pk).status == "authorized"

    def test_after_the_session_ended_the_usual_rules_apply(self, client, started):
        session, intent = started
        services.charge_session_fail(session=ChargeSession.objects.get(pk=session["id"]), stop_reason="cpms_rejected")
        services.charge_session_payment_settle(session=ChargeSession.objects.get(pk=session["id"]))
        assert PaymentIntent.objects.get(pk=intent.pk).status == "voided"
        assert_problem(client.post(f"/v1/payment-intents/{intent.pk}/capture", {}, format="json"), 409, "invalid_state")


@pytest.mark.django_db
class TestConnectorFreedByOwnSession:
    """A CPMS status poll during one of our sessions records CHARGING; once that session has ended, the stale
    report must not refuse the next driver (a later CHARGING report still does)."""

    def _charging_reported_now(self, mapping):
        from django.utils import timezone

        from infrastructure.models import Connector

        Connector.objects.filter(mapping=mapping, connector_id="1").update(
            status="CHARGING", status_updated_at=timezone.now()
        )

    def _finish(self, session):
        from charging.services import charge_session_complete

        ChargeSession.objects.filter(pk=session.pk).update(status="charging", started_at=session.created_at)
        charge_session_complete(session=ChargeSession.objects.get(pk=session.pk), energy_wh=0)

    def test_next_session_starts_after_ours_completed(self, client, operator):
        _, mapping, terminal = make_tariff(operator), make_station(operator), make_terminal(operator)
        first = start_session(operator, terminal=terminal)
        self._charging_reported_now(mapping)
        self._finish(first)
        response = client.post(START_URL, start_body(terminal, authorized_intent(operator)), format="json")
        assert response.status_code == 201, response.content

    def test_charging_reported_after_ours_ended_still_refuses(self, client, operator):
        _, mapping, terminal = make_tariff(operator), make_station(operator), make_terminal(operator)
        self._finish(start_session(operator, terminal=terminal))
        self._charging_reported_now(mapping)
        assert_problem(
            client.post(START_URL, start_body(terminal, authorized_intent(operator)), format="json"),
            409,
            "connector_unavailable",
        )


@pytest.mark.django_db
def test_fast_representation_equals_the_declared_fields(client, operator, setup):
    """`charge_session_data` bypasses the serializer's fields; it must say exactly what those fields say, byte
    for byte, in every state, read as lists read sessions and as a reading locks them."""
    from django.db import transaction
    from rest_framework import serializers

    from charging.serializers import ChargeSessionSerializer
    from evpay.api.renderers import JSONRenderer

    render = JSONRenderer().render
    intent = authorized_intent(operator)
    body = start_body(setup[2], intent, metadata={"bay": 2, "note": "x", "ok": True})
    response = client.post(START_URL, body, format="json")
    assert response.status_code == 201, response.content
    session_id = response.json()["id"]
    ChargeSession.objects.filter(pk=session_id).update(created_at=ago(hours=1))

    def compare():
        with transaction.atomic():
            locked = services.charge_session_for_update(operator_id=operator.pk, session_id=session_id)
            for session in (ChargeSession.objects.select_related("payment_intent").get(pk=session_id), locked):
                by_fields = serializers.ModelSerializer.to_representation(ChargeSessionSerializer(), session)
                assert render(ChargeSessionSerializer(session).data) == render(by_fields)

    compare()  # pending: no reading, no power, no start
    assert progress(client, session_id, 1234, ago(minutes=30), power_kw="7.4").status_code == 200
    services.charge_session_cpms_session_id_record(
        session=ChargeSession.objects.get(pk=session_id), cpms_session_id="CPMS-1"
    )
    compare()
    completed = client.post(f"{URL}/{session_id}/complete", {"stop_reason": "ev_disconnected"}, format="json")
    assert completed.status_code == 200, completed.content
    PaymentIntent.objects.filter(pk=intent.pk).update(amount_refunded=30)
    compare()


@pytest.mark.django_db(transaction=True)
def test_a_reading_reads_the_session_with_its_lock(client, operator):
    """A reading while another one holds the session: it waits for that one's commit and sees its result (here:
    it is older, so ignored), instead of deciding on the row as it was and writing over the newer reading."""
    from tests.charging_support import committed_once_waited_for

    make_tariff(operator)
    make_station(operator)
    session = start_session(operator)
    base = ago(minutes=5)
    ChargeSession.objects.filter(pk=session.pk).update(created_at=base - timedelta(minutes=1))
    assert progress(client, session.pk, 1000, base).status_code == 200
    newer = base + timedelta(seconds=20)

    def newer_reading():
        services.charge_session_record_progress(session=session, energy_wh=2000, measured_at=newer)

    with committed_once_waited_for(newer_reading):
        response = progress(client, session.pk, 1500, base + timedelta(seconds=10))
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["energy_wh"], body["last_progress_at"]) == (2000, newer.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    session.refresh_from_db()
    assert (session.energy_wh, session.last_progress_at) == (2000, newer)
    assert events(session.pk) == ["charge.started"]
