from django.apps import AppConfig


class ChargingConfig(AppConfig):
    name = "charging"

    def ready(self):
        from infrastructure.emsp.feed import session_feed_register
        from infrastructure.selectors import (
            StationTariffLink,
            active_session_source_register,
            station_tariff_link_register,
        )
        from payments.selectors import intent_use_source_register

        from . import selectors, services
        from .cpms_feed import ChargeSessionFeed

        # Mapping deletion, connector removal, `active_session_id` and the simulator's CHARGING ask us.
        active_session_source_register(selectors.running_sessions)
        # An intent's `charge_session_id`, and whether a running session holds it (no capture/void then).
        intent_use_source_register(selectors.intent_uses, session_id_column=selectors.INTENT_SESSION_ID_COLUMN)
        # A mapping's `tariff_id` (API, admin) is ours: infrastructure knows stations, not tariffs.
        station_tariff_link_register(
            StationTariffLink(
                tariff_ids=selectors.station_tariff_ids,
                tariff_exists=selectors.tariff_exists,
                tariff_set=services.station_tariff_set,
                tariff_choices=selectors.tariff_choices,
            )
        )
        # The OCPI receivers (CommandResults, Sessions, CDRs) feed our sessions through this.
        session_feed_register(ChargeSessionFeed())
