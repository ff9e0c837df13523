"""Signing in, roles and the management pages, in real Chromium against a real API.

The read-only tests use the seeded server of conftest.py. Tests that change things (edit and
delete sites, issue tokens, create users, store hostile names) use `workbench`, a second
server of this module whose map base layer comes from a tile server the test runs, and whose
single sign-on goes to a real OpenID provider (oidc-provider-mock) on another port.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from io import BytesIO
from zoneinfo import ZoneInfo

import httpx
import oidc_provider_mock
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from api.routers.auth import WRONG_LOGIN
from contract import Heartbeat, Software
from tests.dashboard.conftest import (
    ROLES,
    Account,
    OpenTab,
    Role,
    Seeded,
    add_account,
    csrf_token,
)
from tests.support.loopback import serving
from tests.support.tally_api import (
    SeedCamera,
    TallyServer,
    add_site,
    post_history,
    register_camera,
    running_server,
)

pytestmark = pytest.mark.browser
MANAGEMENT_PAGES = {
    "sites": "Sites",
    "tokens": "Device tokens",
    "users": "Users",
    "audit": "Audit log",
}
VIEWER_PAGES = ["overview", "site", "intersection", "compare", "health", "open"]
XSS = ['<img src=x onerror="window.__xss=1">', '"><script>window.__xss=1</script>']
ATTRIBUTION = "Tiles <b>© Test Maps</b>"
SSO_LABEL = "Sign in with the Bench city account"
SSO_USER = oidc_provider_mock.User(
    sub="sam",
    claims={
        "email": "sam.sso@bench.example.org",
        "email_verified": True,
        "name": "Sam Single",
        "tally_role": "editor",
    },
)
SIGNED_OUT = r"status of 401"
"""Chromium's console line for the 401 a signed-out dashboard gets (and then shows sign-in)."""


def settle(page: Page) -> None:
    page.wait_for_selector("main[aria-busy='false']")
    page.wait_for_function("!document.querySelector('figure[data-state=loading]')")


def arrive(page: Page, name: str) -> None:
    """Wait until the app has settled on page `name` (after a click that leads there)."""
    expect(page.locator("main")).to_have_attribute("data-page", name)
    settle(page)


def open_app(page: Page, query: str) -> None:
    page.goto(f"/{query}")
    settle(page)


def nav_labels(page: Page) -> list[str]:
    labels: list[str] = page.locator("#nav a").all_inner_texts()
    return labels


@contextmanager
def tile_server() -> Iterator[str]:
    """Map tiles (one grey PNG for every path) on another loopback port: a foreign tile host."""
    buffer = BytesIO()
    Image.new("RGB", (256, 256), (200, 210, 220)).save(buffer, format="PNG")
    png = buffer.getvalue()

    class Tiles(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *_args: object) -> None:
            pass

    with serving(Tiles) as base_url:
        yield base_url


@dataclass(frozen=True)
class Workbench:
    """A server the tests may change, its accounts and its tile host."""

    server: TallyServer
    accounts: dict[Role, Account]
    tiles: str

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def admin(self) -> httpx.Client:
        return self.server.admin()


@pytest.fixture(scope="module")
def workbench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workbench]:
    provider = oidc_provider_mock.run_server_in_thread(user_claims=[SSO_USER])
    with tile_server() as tiles, provider as identity, ExitStack() as stack:
        with pytest.MonkeyPatch.context() as env:  # only while the server starts
            env.setenv("TALLY_MAP_TILE_URL", f"{tiles}/tiles/{{z}}/{{x}}/{{y}}.png")
            env.setenv("TALLY_MAP_TILE_ATTRIBUTION", ATTRIBUTION)
            env.setenv("TALLY_OIDC_ISSUER", f"http://localhost:{identity.server_port}")
            env.setenv("TALLY_OIDC_CLIENT_ID", "tally-dashboard")
            env.setenv("TALLY_OIDC_CLIENT_SECRET", secrets.token_urlsafe(32))
            env.setenv("TALLY_OIDC_BUTTON_LABEL", SSO_LABEL)
            server = stack.enter_context(running_server(tmp_path_factory.mktemp("workbench")))
        with server.admin() as admin:
            add_site(admin, "north-gate", "North Gate", 52.53, 13.38, timezone="Europe/Berlin")
            register_camera(admin, "north-gate", "cam-n", 300)
            accounts = {
                role: add_account(admin, f"{role}@bench.example.org", f"Bench {role}", role)
                for role in ROLES
            }
        yield Workbench(server, accounts, tiles)


def site_of(bench: Workbench, site_id: str) -> httpx.Response:
    with bench.admin() as admin:
        return admin.get(f"/api/v1/sites/{site_id}")


# --- signing in and out, roles ----------------------------------------------------------


def test_viewer_signs_in_sees_a_private_site_is_refused_editing_and_signs_out(
    open_tab: OpenTab, seeded: Seeded
) -> None:
    viewer = seeded.accounts["viewer"]
    tab = open_tab(None, expect_console=SIGNED_OUT)
    open_app(tab, "?page=site&site=mill-rd&bucket=1d")
    assert tab.locator("main").get_attribute("data-page") == "login"
    assert nav_labels(tab) == [], "nothing but sign-in for a stranger"
    tab.screenshot(path="/tmp/dash-login.png", full_page=True)

    tab.get_by_label("E-mail", exact=True).fill(viewer.email)
    tab.get_by_label("Password", exact=True).fill("not the password")
    tab.get_by_role("button", name="Sign in").click()
    expect(tab.get_by_role("alert")).to_have_text(WRONG_LOGIN)

    tab.get_by_label("Password", exact=True).fill(viewer.password)
    tab.get_by_role("button", name="Sign in").click()
    arrive(tab, "site")
    assert tab.locator("h1").inner_text() == "Mill Road", "back to the view asked for"
    assert "bucket=1d" in tab.url
    assert tab.locator("#who").inner_text() == f"{viewer.display_name} · viewer"
    open_app(tab, "?page=overview")
    assert tab.get_by_role("link", name="Mill Road").count() == 1, "a private site"
    assert set(nav_labels(tab)).isdisjoint(MANAGEMENT_PAGES.values())
    open_app(tab, "?page=users")
    assert tab.locator("main").get_attribute("data-page") == "overview"

    token = csrf_token(tab.context)
    refused = tab.context.request.put(
        "/api/v1/admin/sites/mill-rd",
        headers={"X-CSRF-Token": token},
        data={
            "name": "Renamed",
            "road": "",
            "lat": 52.5,
            "lon": 13.45,
            "timezone": "Europe/Berlin",
            "description": "",
            "public": True,
        },
    )
    assert refused.status == 403, "hidden from viewers, and refused by the API too"
    assert tab.context.request.get("/api/v1/admin/users").status == 403

    tab.get_by_role("button", name="Log out").click()
    arrive(tab, "login")
    expect(tab.get_by_role("alert")).to_have_text("You have signed out.")
    assert tab.locator("#account").is_hidden()
    assert tab.context.request.get("/api/v1/sites").status == 401
    tab.reload()
    arrive(tab, "login")


def test_single_sign_on_returns_to_the_view_asked_for(
    open_tab: OpenTab, workbench: Workbench
) -> None:
    tab = open_tab(None, base_url=workbench.base_url, expect_console=SIGNED_OUT)
    # The provider's own page loads a stylesheet from a CDN this machine cannot reach.
    tab.route("https://cdn.jsdelivr.net/**", lambda route: route.fulfill(body="", status=200))
    open_app(tab, "?page=sites")
    assert tab.locator("main").get_attribute("data-page") == "login"
    tab.get_by_role("button", name=SSO_LABEL).click()
    tab.get_by_role("button", name="Deny").click()  # at the provider
    arrive(tab, "login")
    expect(tab.get_by_role("alert")).not_to_be_empty()
    assert tab.url == f"{workbench.base_url}/?page=sites", "still on the way to the sites page"

    tab.get_by_role("button", name=SSO_LABEL).click()
    tab.get_by_role("button", name=SSO_USER.sub, exact=True).click()
    arrive(tab, "sites")
    assert tab.url.startswith(f"{workbench.base_url}/?page=sites")
    assert tab.locator("#who").inner_text() == "Sam Single · editor", "role from the claim"


def test_a_session_that_ends_brings_back_sign_in_and_then_the_view(
    open_tab: OpenTab, seeded: Seeded
) -> None:
    viewer = seeded.accounts["viewer"]
    tab = open_tab(viewer, expect_console=SIGNED_OUT)
    open_app(tab, "?page=overview")
    ended = tab.context.request.post(
        "/api/v1/auth/logout", headers={"X-CSRF-Token": csrf_token(tab.context)}
    )
    assert ended.status == 204, "as if it had expired or been revoked elsewhere"
    tab.get_by_role("link", name="Data health").click()
    arrive(tab, "login")
    expect(tab.get_by_role("alert")).to_have_text("Your session has ended; please sign in again.")
    tab.get_by_label("E-mail", exact=True).fill(viewer.email)
    tab.get_by_label("Password", exact=True).fill(viewer.password)
    tab.get_by_role("button", name="Sign in").click()
    arrive(tab, "health")


def test_state_changing_calls_carry_the_csrf_token(open_tab: OpenTab, seeded: Seeded) -> None:
    tab = open_tab(seeded.accounts["viewer"])
    open_app(tab, "?page=overview")
    token = csrf_token(tab.context)
    with tab.expect_request("**/api/v1/auth/logout") as sent:
        tab.get_by_role("button", name="Log out").click()
    headers = sent.value.headers
    assert (headers["x-csrf-token"], headers["content-type"]) == (token, "application/json")
    arrive(tab, "login")


@pytest.mark.parametrize(
    ("role", "pages"),
    [
        ("viewer", []),
        ("editor", ["Sites"]),
        ("admin", list(MANAGEMENT_PAGES.values())),
    ],
)
def test_management_pages_follow_the_role(
    open_tab: OpenTab, seeded: Seeded, role: Role, pages: list[str]
) -> None:
    tab = open_tab(seeded.accounts[role])
    open_app(tab, "?page=overview")
    assert [label for label in nav_labels(tab) if label in MANAGEMENT_PAGES.values()] == pages


# --- editors: sites -----------------------------------------------------------------------


def test_editor_edits_a_site_with_messages_from_the_api(
    open_tab: OpenTab, workbench: Workbench
) -> None:
    with workbench.admin() as admin:
        add_site(admin, "elm-st", "Elm Street", 52.51, 13.39, road="K12", timezone="Europe/Berlin")
    tab = open_tab(
        workbench.accounts["editor"], base_url=workbench.base_url, expect_console=r"status of 422"
    )
    open_app(tab, "?page=sites")
    tab.get_by_role("button", name="Edit Elm Street").click()
    form = tab.get_by_role("form", name="Edit Elm Street")
    form.get_by_label("Latitude (WGS 84)").fill("123")
    form.get_by_label("Name").fill("Elm Street (north)")
    form.get_by_role("button", name="Save changes").click()
    latitude = form.get_by_label("Latitude (WGS 84)")
    expect(latitude).to_have_attribute("aria-invalid", "true")
    problem = tab.locator(f"#{latitude.get_attribute('id')}-problem")
    expect(problem).to_contain_text("90")
    tab.screenshot(path="/tmp/dash-sites.png", full_page=True)

    latitude.fill("52.515")
    form.get_by_label("Publish as open data").check()
    form.get_by_role("button", name="Save changes").click()
    expect(tab.get_by_role("status").filter(has_text="Saved")).to_have_text(
        "Saved Elm Street (north)."
    )
    settle(tab)
    row = tab.locator("tr", has_text="elm-st")
    assert row.locator("th").inner_text() == "Elm Street (north)"
    assert "published" in row.inner_text()
    stored = site_of(workbench, "elm-st").json()
    assert (stored["name"], stored["lat"], stored["road"], stored["public"]) == (
        "Elm Street (north)",
        52.515,
        "K12",
        True,
    )


def test_editor_deletes_a_site_only_after_typing_its_id(
    open_tab: OpenTab, workbench: Workbench
) -> None:
    with workbench.admin() as admin:
        add_site(admin, "old-mill", "Old Mill", 52.49, 13.41)
    tab = open_tab(workbench.accounts["editor"], base_url=workbench.base_url)
    open_app(tab, "?page=sites")
    tab.get_by_role("button", name="Delete Old Mill").click()
    confirm = tab.get_by_role("button", name="Delete site")
    expect(confirm).to_be_disabled()
    tab.get_by_label("Type old-mill to confirm").fill("old-mil")
    expect(confirm).to_be_disabled()
    tab.get_by_role("button", name="Cancel").click()
    assert site_of(workbench, "old-mill").status_code == 200, "cancel deletes nothing"

    tab.get_by_role("button", name="Delete Old Mill").click()
    tab.get_by_label("Type old-mill to confirm").fill("old-mill")
    with tab.expect_request("**/api/v1/admin/sites/old-mill?confirm=old-mill") as sent:
        tab.get_by_role("button", name="Delete site").click()
    assert sent.value.method == "DELETE"
    expect(tab.get_by_role("status").filter(has_text="Deleted")).to_have_text("Deleted Old Mill.")
    settle(tab)
    assert tab.locator("tr", has_text="old-mill").count() == 0
    assert site_of(workbench, "old-mill").status_code == 404


# --- admins: device tokens, users, audit --------------------------------------------------


def heartbeat_status(
    base_url: str,
    token: str,
    camera_id: str,
    dead_lettered: int = 0,
    software: Software | None = None,
) -> int:
    beat = Heartbeat(
        camera_id=camera_id,
        sent_at=datetime.now(UTC),
        uptime_s=60.0,
        outbox_backlog=0,
        dropped_reports=0,
        dead_lettered_reports=dead_lettered,
        streams=[],
        config_version=1,
        software=software,
    )
    response = httpx.post(
        f"{base_url}/api/v1/heartbeat",
        json=beat.model_dump(mode="json"),
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status_code


def test_admin_issues_a_token_once_and_revokes_it(open_tab: OpenTab, workbench: Workbench) -> None:
    tab = open_tab(workbench.accounts["admin"], base_url=workbench.base_url)
    tab.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_app(tab, "?page=tokens")
    form = tab.get_by_role("form", name="Issue a device token")
    form.get_by_label("Camera", exact=True).select_option("cam-n")
    form.get_by_label("Expires after (days)").fill("7")
    form.get_by_role("button", name="Issue token").click()
    secret = tab.locator("[data-secret]")
    expect(secret).to_be_visible()
    token = secret.inner_text()
    tab.get_by_role("button", name="Copy").click()
    expect(tab.get_by_role("status").filter(has_text="Copied")).to_be_visible()
    assert tab.evaluate("navigator.clipboard.readText()") == token
    assert heartbeat_status(workbench.base_url, token, "cam-n") == 200, "the token works"

    token_id = tab.locator("[data-token-id]").get_attribute("data-token-id")
    assert token_id
    assert token.startswith(f"tally_{token_id}_")
    with workbench.admin() as admin:
        listed = admin.get("/api/v1/admin/tokens", params={"camera_id": "cam-n"}).json()["tokens"]
    (stored,) = [t for t in listed if t["token_id"] == token_id]
    expires = datetime.fromisoformat(stored["expires_at"])
    assert timedelta(days=6, hours=23) < expires - datetime.now(UTC) <= timedelta(days=7)

    open_app(tab, "?page=tokens")
    assert tab.locator("[data-secret]").count() == 0, "shown only once"
    row = tab.locator("tr", has_text=token_id)
    cells = row.locator("td").all_inner_texts()
    assert cells[:2] == ["device", "cam-n"]
    assert cells[4] != "never", "the expiry is listed"
    assert cells[5] != "never", "and the last use (the heartbeat above)"
    assert cells[6] == "live"
    row.get_by_role("button", name=f"Revoke {token_id}").click()
    tab.get_by_role("button", name="Revoke token").click()
    expect(tab.locator("tr", has_text=token_id).locator("td").nth(6)).to_have_text("revoked")
    assert heartbeat_status(workbench.base_url, token, "cam-n") == 401, "refused once revoked"
    open_app(tab, "?page=audit")
    events = tab.locator("tbody tr", has_text=token_id).all_inner_texts()
    assert any("token.revoke" in event for event in events), events


def test_admin_creates_a_user_who_can_sign_in_and_the_audit_log_shows_it(
    open_tab: OpenTab, workbench: Workbench
) -> None:
    tab = open_tab(workbench.accounts["admin"], base_url=workbench.base_url)
    open_app(tab, "?page=users")
    form = tab.get_by_role("form", name="Add a user")
    form.get_by_label("E-mail", exact=True).fill("new.editor@bench.example.org")
    form.get_by_label("Display name").fill("New Editor")
    form.get_by_label("Role").select_option("editor")
    form.get_by_label("North Gate").check()
    form.get_by_role("button", name="Create user").click()
    password = tab.locator("[data-secret]").inner_text()
    row = tab.locator("tr", has_text="new.editor@bench.example.org")
    expect(row).to_contain_text("editor")
    expect(row).to_contain_text("North Gate")

    newcomer = open_tab(
        Account("new.editor@bench.example.org", password, "editor", "New Editor"),
        base_url=workbench.base_url,
    )
    open_app(newcomer, "?page=sites")
    assert newcomer.locator("#who").inner_text() == "New Editor · editor"
    assert newcomer.locator("tbody tr").count() == 1, "restricted to North Gate"

    row.get_by_role("button", name="Disable new.editor@bench.example.org").click()
    expect(tab.locator("tr", has_text="new.editor@bench.example.org")).to_contain_text("disabled")
    assert newcomer.context.request.get("/api/v1/sites").status == 401, "disabling ends sessions"

    tab.get_by_role("button", name="Edit new.editor@bench.example.org").click()
    edit = tab.get_by_role("form", name="Edit new.editor@bench.example.org")
    edit.get_by_label("Role").select_option("viewer")
    edit.get_by_label("North Gate").uncheck()
    edit.get_by_role("button", name="Save changes").click()
    expect(tab.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    cells = tab.locator("tr", has_text="new.editor@").locator("td").all_inner_texts()
    assert cells[1:4] == ["viewer", "every site", "disabled"]

    tab.get_by_role("button", name="Delete new.editor@bench.example.org").click()
    tab.get_by_role("button", name="Delete user").click()
    expect(tab.get_by_role("status").filter(has_text="Deleted")).to_be_visible()
    assert tab.locator("tr", has_text="new.editor@").count() == 0
    with workbench.admin() as admin:
        emails = [u["email"] for u in admin.get("/api/v1/admin/users").json()["users"]]
    assert "new.editor@bench.example.org" not in emails

    open_app(tab, "?page=audit")
    admin, target = workbench.accounts["admin"].email, "new.editor@bench.example.org"
    cells = [row.split("\t") for row in tab.locator("tbody tr").all_inner_texts()]
    by_admin = [row[2:6] for row in cells if row[2] == admin and row[5] == target]
    assert by_admin[:4] == [
        [admin, "admin", action, target]
        for action in ("user.delete", "user.update", "user.update", "user.create")
    ], "who, role, what, on whom: newest first"
    assert password not in tab.locator("table").inner_text(), "never a secret"


def test_audit_log_pages_back_to_older_events(open_tab: OpenTab, workbench: Workbench) -> None:
    site = {
        "road": "",
        "lat": 52.5,
        "lon": 13.4,
        "timezone": "UTC",
        "description": "",
        "listed": True,
    }
    with workbench.admin() as admin:
        add_site(admin, "busy-rd", "Busy Road", 52.5, 13.4)
        for n in range(55):
            body = {**site, "name": f"Busy Road {n}", "public": n % 2 == 0}
            admin.put("/api/v1/admin/sites/busy-rd", json=body).raise_for_status()
    tab = open_tab(workbench.accounts["admin"], base_url=workbench.base_url)
    open_app(tab, "?page=audit")
    newest = [int(n) for n in tab.locator("tbody th").all_inner_texts()]
    assert len(newest) == 50
    assert newest == sorted(newest, reverse=True), "newest first"
    assert "site.update" in tab.locator("tbody tr").first.inner_text()
    tab.get_by_role("link", name="Older events").click()
    settle(tab)
    assert f"before={newest[-1]}" in tab.url
    older = [int(n) for n in tab.locator("tbody th").all_inner_texts()]
    assert older
    assert max(older) < newest[-1]
    tab.get_by_role("link", name="Newest events").click()
    settle(tab)
    assert [int(n) for n in tab.locator("tbody th").all_inner_texts()] == newest


def test_health_page_shows_dead_letters_and_a_camera_that_looks_frozen(
    open_tab: OpenTab, workbench: Workbench
) -> None:
    now = datetime.now(UTC)
    end = datetime.fromtimestamp(now.timestamp() // 300 * 300, UTC)
    zone = ZoneInfo("Europe/Berlin")
    frozen = SeedCamera("cam-frozen", end - timedelta(hours=16), end, 300, zone, scale=0.0)
    with workbench.admin() as admin:
        add_site(admin, "quiet-ln", "Quiet Lane", 52.54, 13.37, timezone="Europe/Berlin")
        token = register_camera(admin, "quiet-ln", "cam-frozen", 300)
    post_history(workbench.base_url, token, frozen)
    unapproved = Software(version="0.1.0", code_sha256="ab" * 32, model_sha256="cd" * 32)
    beat = heartbeat_status(
        workbench.base_url, token, "cam-frozen", dead_lettered=4, software=unapproved
    )
    assert beat == 200
    tab = open_tab(workbench.accounts["viewer"], base_url=workbench.base_url)
    open_app(tab, "?page=health&site=quiet-ln")
    devices = tab.locator("table").first
    headers = devices.locator("thead th").all_inner_texts()[1:]
    rows = {
        row.locator("th").inner_text(): dict(
            zip(headers, row.locator("td").all_inner_texts(), strict=True)
        )
        for row in devices.locator("tbody tr").all()
    }
    assert rows["cam-frozen"]["Dead-lettered reports"] == "4"
    assert rows["cam-frozen"]["Alert"].startswith("suspected frozen: no vehicles in 1")
    assert rows["cam-frozen"]["Software"] == "0.1.0: not an approved release"
    assert rows["cam-n"]["Software"] == "–", "a worker that never said what it runs"
    assert rows["cam-n"]["Alert"] == "–", "a camera that never reported is not frozen"


# --- hostile input and the content security policy ----------------------------------------


def test_hostile_names_are_shown_as_text_on_every_page(
    open_tab: OpenTab, workbench: Workbench
) -> None:
    """Regression: a site named <img onerror=...> ran script for every planner on `/`."""
    with workbench.admin() as admin:
        add_site(
            admin,
            "xss-st",
            XSS[0],
            52.52,
            13.41,
            road=XSS[1],
            description="".join(XSS),
            timezone="Europe/Berlin",
            public=True,
        )
        line = {"name": "main", "direction_names": {"up": "northbound"}}
        camera = {"id": "cam-x", "site_id": "xss-st", "name": XSS[1], "lines": [line]}
        admin.post("/api/v1/admin/cameras", json=camera).raise_for_status()
        for hostile in ({**line, "name": XSS[0]}, {**line, "direction_names": {"up": XSS[1]}}):
            refused = admin.post("/api/v1/admin/cameras", json={**camera, "lines": [hostile]})
            assert refused.status_code == 422, "line and direction names cannot hold markup"
            assert refused.json()["detail"][0]["loc"][:2] == ["body", "lines"]
        mallory = add_account(admin, "mallory@bench.example.org", XSS[0], "admin")
    tab = open_tab(mallory, base_url=workbench.base_url)
    for name in [*VIEWER_PAGES, *MANAGEMENT_PAGES]:
        open_app(tab, f"?page={name}&site=xss-st")
        assert tab.evaluate("window.__xss") is None, name
        assert tab.locator("img:not(.leaflet-tile), main script").count() == 0, name
        expect(tab.locator("#who")).to_have_text(f"{XSS[0]} · admin")
        if name == "overview":
            expect(tab.locator(".leaflet-tooltip", has_text=XSS[0])).to_be_visible()
            expect(tab.get_by_role("link", name=XSS[0])).to_be_visible()
        if name in ("site", "intersection"):
            expect(tab.locator("h1")).to_have_text(XSS[0])
            expect(tab.locator(".page-head p")).to_contain_text(XSS[1])
        if name in ("site", "intersection", "compare", "health"):
            expect(tab.locator("select[name='site'] option:checked")).to_have_text(XSS[0])
        if name == "sites":
            expect(tab.locator("tr", has_text="xss-st").locator("th")).to_have_text(XSS[0])
            tab.get_by_role("button", name=f"Edit {XSS[0]}").click()
            form = tab.get_by_role("form", name=f"Edit {XSS[0]}")
            expect(form.get_by_label("Road", exact=True)).to_have_value(XSS[1])
            expect(form.get_by_label("Description", exact=True)).to_have_value("".join(XSS))
        if name == "users":
            expect(tab.locator("tr", has_text="mallory@").locator("th")).to_have_text(XSS[0])
    assert tab.evaluate("window.__xss") is None


@pytest.mark.parametrize("name", [*VIEWER_PAGES, *MANAGEMENT_PAGES])
def test_every_page_runs_under_a_strict_content_security_policy(
    open_tab: OpenTab, workbench: Workbench, name: str
) -> None:
    """No inline script or handler anywhere; a violation is a console error (conftest)."""
    tab = open_tab(workbench.accounts["admin"], base_url=workbench.base_url)
    response = tab.goto(f"/?page={name}&site=north-gate")
    assert response is not None
    policy = {
        directive.split()[0]: directive.split()[1:]
        for directive in response.headers["content-security-policy"].split(";")
        if directive.strip()
    }
    assert policy["script-src"] == ["'self'"]
    assert workbench.tiles in policy["img-src"], "the configured tile host"
    settle(tab)
    assert tab.locator("main").get_attribute("data-page") == name
    assert tab.locator(".message.error, figure[data-state='error']").count() == 0
    if name == "overview":
        tiles = tab.locator("img.leaflet-tile-loaded")
        expect(tiles.first).to_be_visible()
        assert tiles.first.get_attribute("src").startswith(f"{workbench.tiles}/tiles/")
        expect(tab.locator(".leaflet-control-attribution")).to_contain_text(ATTRIBUTION)
