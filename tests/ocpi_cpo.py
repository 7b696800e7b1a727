"""An independent OCPI 2.2.1 CPO for the tests: the `extrawest-ocpi` library (module `py_ocpi`, FastAPI) with its
own 2.2.1 CPO modules (credentials, locations, sessions, cdrs, commands) and HTTP push, served by uvicorn on a free
127.0.0.1 port in a thread, over a small in-memory crud (`CpoStore`) whose state the tests inspect.

py_ocpi reads its settings (host, protocol, party) from the environment when it is first imported, so the port is
chosen before that import. Two things the library does not do are configured from outside, with its own API:
its version details do not list its commands module (`ENDPOINTS` has no CPO entry for it), so that entry is added
with the library's own endpoint generator; and a charger is played by the crud (command results, sessions, CDRs are
what the test puts in the store)."""

import os
import secrets
import socket
import threading
import time
from datetime import UTC, datetime


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PORT = _free_port()
COUNTRY_CODE, PARTY_ID = "DE", "CPO"
os.environ.update(
    OCPI_HOST=f"127.0.0.1:{PORT}",
    PROTOCOL="http",
    COUNTRY_CODE=COUNTRY_CODE,
    PARTY_ID=PARTY_ID,
    COMMAND_AWAIT_TIME="5",
    ENVIRONMENT="production",
)

import uvicorn  # noqa: E402
from py_ocpi import get_application  # noqa: E402
from py_ocpi.core.authentication.authenticator import Authenticator  # noqa: E402
from py_ocpi.core.endpoints import ENDPOINTS  # noqa: E402
from py_ocpi.core.endpoints.v_2_2_1.utils import cpo_generator  # noqa: E402
from py_ocpi.core.enums import Action, ModuleID, RoleEnum  # noqa: E402
from py_ocpi.modules.versions.enums import VersionNumber  # noqa: E402
from py_ocpi.modules.versions.v_2_2_1.enums import InterfaceRole  # noqa: E402

V221 = VersionNumber.v_2_2_1
BASE = f"http://127.0.0.1:{PORT}"
VERSIONS_URL = f"{BASE}/ocpi/versions"
MODULES = [
    ModuleID.credentials_and_registration,
    ModuleID.locations,
    ModuleID.sessions,
    ModuleID.cdrs,
    ModuleID.commands,
]
# The library serves its commands module but does not advertise it; advertise it, built by its own generator.
ENDPOINTS[V221][RoleEnum.cpo].setdefault(
    ModuleID.commands, cpo_generator.generate_endpoint(ModuleID.commands, InterfaceRole.receiver)
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def location(location_id: str, evses: list[tuple[str, str, list[str]]]) -> dict:
    """A valid OCPI 2.2.1 Location with (evse uid, status, connector ids) EVSEs."""
    return {
        "country_code": COUNTRY_CODE,
        "party_id": PARTY_ID,
        "id": location_id,
        "publish": True,
        "address": "Hauptstrasse 1",
        "city": "Berlin",
        "country": "DEU",
        "coordinates": {"latitude": "52.520008", "longitude": "13.404954"},
        "time_zone": "Europe/Berlin",
        "last_updated": now(),
        "evses": [
            {
                "uid": uid,
                "status": status,
                "last_updated": now(),
                "connectors": [
                    {
                        "id": cid,
                        "standard": "IEC_62196_T2_COMBO",
                        "format": "CABLE",
                        "power_type": "DC",
                        "max_voltage": 400,
                        "max_amperage": 125,
                        "last_updated": now(),
                    }
                    for cid in connector_ids
                ],
            }
            for uid, status, connector_ids in evses
        ],
    }


class CpoStore:
    """The CPO's state: registrations (the tokens), locations, commands received, sessions, CDRs. The charger
    answers each command with `command_results[(command, location or session id)]`, default ACCEPTED."""

    def __init__(self):
        self.tokens_a: set[str] = set()
        self.registrations: list[dict] = []  # {"token_c", "client_token" (the eMSP's token B), "credentials", ...}
        self.locations: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}
        self.cdrs: dict[str, dict] = {}
        self.commands: list[tuple[str, dict]] = []
        self.command_results: dict[tuple[str, str], str] = {}
        self.command_results_sent: list[tuple[str, dict]] = []

    def reset(self):
        self.__init__()

    def issue_token_a(self) -> str:
        token = "token-a-" + secrets.token_hex(8)
        self.tokens_a.add(token)
        return token

    def registration(self) -> dict:
        assert len(self.registrations) == 1, self.registrations
        return self.registrations[0]

    def commands_of(self, command: str) -> list[dict]:
        return [data for name, data in self.commands if name == command]


STORE = CpoStore()


class Crud:
    """py_ocpi's crud interface over STORE (the library awaits these as coroutines)."""

    async def get(self, module, role, id, *args, **kwargs):
        if module == ModuleID.locations:
            return STORE.locations.get(str(id).upper()) or STORE.locations.get(str(id))
        if module == ModuleID.commands:  # the charger's answer to the command just received
            data = kwargs["command_data"]
            key = getattr(data, "location_id", None) or getattr(data, "session_id", None)
            result = STORE.command_results.get((kwargs["command"].value, str(key).upper()), "ACCEPTED")
            STORE.command_results_sent.append((kwargs["command"].value, {"result": result}))
            return {"result": result}
        if module == ModuleID.sessions:
            return STORE.sessions.get(id)
        if module == ModuleID.cdrs:
            return STORE.cdrs.get(id)
        if module == ModuleID.credentials_and_registration:
            found = next((r for r in STORE.registrations if r["token_c"] == id), None)
            return found and self._credentials(found["token_c"])
        return None

    async def list(self, module, role, filters, *args, **kwargs):
        items = {
            ModuleID.locations: STORE.locations,
            ModuleID.sessions: STORE.sessions,
            ModuleID.cdrs: STORE.cdrs,
        }.get(module, {})
        values = list(items.values())
        page = values[filters["offset"] : filters["offset"] + filters["limit"]]
        return page, len(values), filters["offset"] + filters["limit"] >= len(values)

    async def create(self, module, role, data, *args, **kwargs):
        if module == ModuleID.credentials_and_registration:  # the eMSP's POST with token A
            token_c = "token-c-" + secrets.token_hex(8)
            STORE.registrations.append(
                {
                    "token_c": token_c,
                    "token_a": kwargs["auth_token"],
                    "client_token": data["credentials"]["token"],
                    "credentials": data["credentials"],
                    "endpoints": data["endpoints"],
                }
            )
            return self._credentials(token_c)
        return data

    async def update(self, module, role, data, id, *args, **kwargs):
        return data

    async def delete(self, module, role, id, *args, **kwargs):
        STORE.registrations = [r for r in STORE.registrations if r["token_c"] != id]

    async def do(self, module, role, action, *args, data=None, **kwargs):
        if action == Action.get_client_token:
            found = next(r for r in STORE.registrations if r["token_c"] == kwargs["auth_token"])
            return found["client_token"]
        if action == Action.send_command:
            command_data = args[0] if args else data
            STORE.commands.append((kwargs["command"].value, command_data))
            return {"result": "ACCEPTED", "timeout": 30}
        return None

    @staticmethod
    def _credentials(token_c: str) -> dict:
        return {
            "token": token_c,
            "url": VERSIONS_URL,
            "roles": [
                {
                    "role": "CPO",
                    "business_details": {"name": "Independent CPO"},
                    "party_id": PARTY_ID,
                    "country_code": COUNTRY_CODE,
                }
            ],
        }


class CpoAuthenticator(Authenticator):
    @classmethod
    async def get_valid_token_c(cls):
        return [r["token_c"] for r in STORE.registrations]

    @classmethod
    async def get_valid_token_a(cls):
        return list(STORE.tokens_a)


def application():
    return get_application(
        version_numbers=[V221],
        roles=[RoleEnum.cpo],
        crud=Crud(),
        modules=MODULES,
        authenticator=CpoAuthenticator,
        http_push=True,
    )


class CpoServer:
    """uvicorn serving the CPO in a thread; `stop()` and `start()` again (the same port) play an outage."""

    def __init__(self):
        self.thread: threading.Thread | None = None
        self.server: uvicorn.Server | None = None

    def start(self):
        config = uvicorn.Config(application(), host="127.0.0.1", port=PORT, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the OCPI CPO did not start")
            time.sleep(0.05)

    def stop(self):
        if self.server is not None:
            self.server.should_exit = True
            self.thread.join(10)
            self.server = None
