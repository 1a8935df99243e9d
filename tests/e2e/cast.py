"""Who the stories are about, set up the way an admin would through the API: the customers
(Acme hourly and new, Globex on a 10 h/month agreement, Initech with a 20 h prepaid block,
Northwind in Vancouver on a Canadian holiday calendar) and the consultants (Alice for printers,
Bob for networks, Dave for both but only on weekends)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tests.e2e.actors import Api, client_credentials, password_sign_in
from tests.e2e.world import Scene

PASSWORD = "correct horse battery staple"
WEEKDAYS_9_TO_5 = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}

ORGANIZATIONS: dict[str, dict[str, Any]] = {
    "acme": {
        "name": "Acme Corp",
        "support_tier": "hourly",
        "email_domains": ["acme.test"],
        "sla_signed": False,
    },
    "globex": {
        "name": "Globex Corporation",
        "support_tier": "agreement",
        "email_domains": ["globex.test"],
        "sla_signed": True,
    },
    "initech": {
        "name": "Initech",
        "support_tier": "block",
        "email_domains": ["initech.test"],
        "sla_signed": True,
    },
    "northwind": {
        "name": "Northwind Traders",
        "support_tier": "hourly",
        "timezone": "America/Vancouver",
        "email_domains": ["northwind.test"],
        "sla_signed": True,
    },
}
BILLING_EMAILS = {"globex": "accounts@globex.test", "initech": "accounts@initech.test"}

CONSULTANTS: dict[str, dict[str, Any]] = {
    "alice": {
        "email": "alice@helpdesk.test",
        "name": "Alice Archer",
        "skills": ["printers", "hardware"],
        "working_hours": WEEKDAYS_9_TO_5,
    },
    "bob": {
        "email": "bob@helpdesk.test",
        "name": "Bob Baker",
        "skills": ["networks"],
        "working_hours": WEEKDAYS_9_TO_5,
    },
    "dave": {
        "email": "dave@helpdesk.test",
        "name": "Dave Dawn",
        "skills": ["printers", "networks"],
        "working_hours": {"sat": [["10:00", "14:00"]], "sun": [["10:00", "14:00"]]},
    },
}

# Vancouver's business calendar: British Columbia's statutory holidays (Good Friday among them).
VANCOUVER_CALENDAR = {
    "timezone": "America/Vancouver",
    "weekly_hours": WEEKDAYS_9_TO_5,
    "holiday_country": "CA",
    "holiday_subdivision": "BC",
    "closed_dates": [],
}


@dataclass
class Cast:
    """Ids and credentials of everybody (they outlive a stack: the database stays), and their
    access tokens (valid for 15 minutes of real time, so across stacks too)."""

    admin_email: str
    admin_password: str
    portal_client: tuple[str, str]
    portal_organization: str
    organizations: dict[str, str] = field(default_factory=dict)
    consultants: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    _apis: dict[tuple[str, str], Api] = field(default_factory=dict)

    def api(self, scene: Scene, who: str) -> Api:
        """``admin``, ``portal``, or a consultant's key (``alice`` …)."""
        key = (scene.gateway, who)
        if key not in self._apis:
            if who not in self.tokens:
                self.tokens[who] = self._sign_in(scene, who)
            self._apis[key] = Api(who, scene.gateway, self.tokens[who])
        return self._apis[key]

    def _sign_in(self, scene: Scene, who: str) -> str:
        if who == "admin":
            return password_sign_in(scene.gateway, self.admin_email, self.admin_password)
        if who == "portal":
            client_id, secret = self.portal_client
            return client_credentials(
                scene.gateway, client_id, secret, "tickets:read tickets:write webhooks:manage"
            )
        return password_sign_in(scene.gateway, CONSULTANTS[who]["email"], PASSWORD)

    def close(self) -> None:
        for api in self._apis.values():
            api.close()
        self._apis.clear()


def assemble(scene: Scene) -> Cast:
    """Create the organizations, consultants and calendars, and wait until every service has
    heard of them (triage's roster, billing's accounts)."""
    credentials = scene.stack.credentials()
    admin_creds, portal_creds = credentials["admin"], credentials["portal"]
    assert isinstance(admin_creds, dict) and isinstance(portal_creds, dict)
    cast = Cast(
        admin_email=admin_creds["email"],
        admin_password=admin_creds["password"],
        portal_client=(portal_creds["client_id"], portal_creds["client_secret"]),
        portal_organization=portal_creds["organization_id"],
    )
    admin = cast.api(scene, "admin")
    for key, body in CONSULTANTS.items():
        agent = admin.post("/api/v1/agents", json={**body, "timezone": "America/Chicago", "capacity": 10})
        cast.consultants[key] = agent["id"]
        admin.put(f"/api/v1/agents/{agent['id']}/password", expect=204, json={"password": PASSWORD})
    for key, body in ORGANIZATIONS.items():
        cast.organizations[key] = admin.post("/api/v1/organizations", json=body)["id"]
    admin.put("/api/v1/triage/calendars/vancouver", json=VANCOUVER_CALENDAR)

    subjects = [f"agent:{i}" for i in cast.consultants.values()]
    subjects += [f"organization:{i}" for i in cast.organizations.values()]
    for subject in subjects:
        scene.backstage.await_subject("ticket_api", subject)

    admin.put(
        f"/api/v1/triage/organizations/{cast.organizations['northwind']}/calendar",
        json={"calendar": "vancouver"},
    )
    for key, email in BILLING_EMAILS.items():
        account = admin.patch(
            f"/api/v1/billing/accounts/{cast.organizations[key]}", json={"billing_email": email}
        )
        assert account["billing_email"] == email
    return cast


def wait_until(check: Any, timeout: float = 15.0, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll ``check()`` until it returns something truthy (an async effect, not time passing)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s (last: {value!r})")
        time.sleep(interval)
