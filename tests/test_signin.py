"""Sign-in throttling over all accounts from one address (password spraying), on both sign-in pages."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "right-horse-battery"


def _address() -> str:
    """An address no other test signs in from: the counts live in the run's Redis for 15 minutes."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


def test_one_password_tried_on_many_accounts_from_one_address_pauses_that_address(make_user, settings, caplog):
    """One wrong try per account never reached the per-account limit (10), so one address could try a common
    password on every account. Past SIGNIN_FAILURES_PER_ADDRESS wrong passwords over all accounts, that address's
    sign-ins are refused (also a right password, on /login/ and /admin/login/); other addresses are not."""
    settings.SIGNIN_FAILURES_PER_ADDRESS = 5
    names = [f"sprayed-{uuid.uuid4().hex[:8]}" for _ in range(6)]
    for name in names:
        make_user("admin", username=name, password=PASSWORD, is_staff=True)
    sprayer = Client(REMOTE_ADDR=_address())
    for name in names[:5]:
        page = sprayer.post("/login/", {"username": name, "password": "Summer2026!"}).content.decode()
        assert "Wrong username or password." in page
    for url in ("/login/", "/admin/login/"):
        refused = sprayer.post(url, {"username": names[5], "password": PASSWORD})
        assert refused.status_code == 200 and "Too many wrong passwords from here" in refused.content.decode()
    assert "_auth_user_id" not in sprayer.session
    paused = [r.getMessage() for r in caplog.records if r.name == "workbench.signin"]
    assert len(paused) == 1 and "5 wrong passwords over all accounts" in paused[0]  # the operators hear of it once
    assert (
        Client(REMOTE_ADDR=_address()).post("/login/", {"username": names[5], "password": PASSWORD}).status_code == 302
    )


def test_an_office_behind_one_address_signing_in_is_not_paused_by_its_successes(make_user, settings):
    """Only wrong passwords count towards the address's limit, and a success does not clear it (an attacker's own
    account would reset it): many colleagues signing in from one NAT address, with a few typos, go on."""
    settings.SIGNIN_FAILURES_PER_ADDRESS = 5
    office = _address()
    names = [f"colleague-{uuid.uuid4().hex[:8]}" for _ in range(8)]
    for name in names:
        make_user("moderator", username=name, password=PASSWORD)
    for i, name in enumerate(names):
        if i < 4:  # four typos over the morning, under the limit of five
            Client(REMOTE_ADDR=office).post("/login/", {"username": name, "password": "typo"})
        assert Client(REMOTE_ADDR=office).post("/login/", {"username": name, "password": PASSWORD}).status_code == 302
    Client(REMOTE_ADDR=office).post("/login/", {"username": names[0], "password": "typo"})  # the fifth
    refused = Client(REMOTE_ADDR=office).post("/login/", {"username": names[1], "password": PASSWORD})
    assert "Too many wrong passwords from here" in refused.content.decode()


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_a_post_without_a_password_does_not_clear_the_accounts_count_of_wrong_passwords(make_user, url):
    """The form's clean ran even when the password field was empty (a field error): no password was checked, yet
    it counted as a success and cleared the account's count, so a guesser sending an empty password after every
    nine guesses was never paused. Only a sign-in that really succeeded clears it."""
    name = f"guessed-{uuid.uuid4().hex[:8]}"
    make_user("admin", username=name, password=PASSWORD, is_staff=True)
    guesser = Client(REMOTE_ADDR=_address())
    for i in range(10):
        guesser.post(url, {"username": name, "password": f"guess-{i}"})
        if i == 8:
            assert guesser.post(url, {"username": name, "password": ""}).status_code == 200  # the field is required
    refused = guesser.post(url, {"username": name, "password": PASSWORD})
    assert "Too many wrong passwords from here" in refused.content.decode()
    assert "_auth_user_id" not in guesser.session


def test_a_nul_in_the_sign_in_form_is_said_on_its_field_with_the_page_kept(make_user):
    """Without the page script (which says it before sending), a NUL in the username gave the generic 400 page;
    the sign-in form now says it beside the rest of the page, like every other form, and checks no password."""
    name = f"nul-{uuid.uuid4().hex[:8]}"
    make_user("moderator", username=name, password=PASSWORD)
    client = Client(REMOTE_ADDR=_address())
    page = client.post("/login/", {"username": name + "\x00", "password": PASSWORD}, HTTP_ACCEPT="text/html")
    html = page.content.decode()
    assert page.status_code == 200 and "Username: This contains a NUL character" in html
    assert '<input type="hidden" name="next"' in html and "_auth_user_id" not in client.session
    empty = client.post("/login/", {"username": name, "password": ""}).content.decode()
    assert "Password: This field is required." in empty and "Wrong username or password." not in empty
    wrong = client.post("/login/", {"username": name, "password": "nope"}).content.decode()
    assert "Wrong username or password." in wrong
    assert client.post("/login/", {"username": name, "password": PASSWORD}).status_code == 302


def _signin_failures(outcome: str, admin_client: Client) -> float:
    text = admin_client.get("/metrics").content.decode()
    prefix = f'workbench_signin_failures_total{{outcome="{outcome}"}} '
    return next((float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)), 0.0)


def test_spraying_from_many_addresses_shows_on_metrics_though_no_address_is_paused(make_user, client_as):
    """One wrong password per account, each from its own address, meets no limit: the throttle cannot tell it
    from typos. What an operator can see is the rate of failed sign-ins over all addresses on /metrics (the alert
    goes on its rise); a refusal while paused counts apart, so a paused sprayer does not hide among typos."""
    admin = client_as("admin")
    wrong, paused = _signin_failures("wrong_password", admin), _signin_failures("paused", admin)
    names = [f"spread-{uuid.uuid4().hex[:8]}" for _ in range(4)]
    for name in names:
        make_user("moderator", username=name, password=PASSWORD)
        page = Client(REMOTE_ADDR=_address()).post("/login/", {"username": name, "password": "Winter2026!"})
        assert "Wrong username or password." in page.content.decode()  # never paused: one try per address
    assert _signin_failures("wrong_password", admin) == wrong + 4
    assert _signin_failures("paused", admin) == paused
    guesser = Client(REMOTE_ADDR=_address())
    for i in range(11):  # the eleventh is refused without a check
        guesser.post("/login/", {"username": names[0], "password": f"guess-{i}"})
    assert _signin_failures("wrong_password", admin) == wrong + 14
    assert _signin_failures("paused", admin) == paused + 1


def test_a_page_that_sends_you_to_sign_in_is_named_there(client):  # type: ignore[no-untyped-def]
    """Walked: a session that ended mid-work (or a link opened signed out) landed on a bare "Sign in" form with no
    word of why; it now names the page the sign-in goes on to. Opened directly, or with an address elsewhere
    (never followed), it says nothing."""
    sent = client.get("/review/", follow=True)
    assert sent.redirect_chain[-1][0].startswith("/login/?next=")
    page = sent.content.decode()
    assert 'id="signin-next"' in page and "Sign in to go on to <code>/review/</code>" in page
    assert "your session has ended" in page
    assert 'id="signin-next"' not in client.get("/login/").content.decode()
    assert 'id="signin-next"' not in client.get("/login/?next=https://evil.example/").content.decode()


def test_a_first_visit_to_the_workbench_is_not_told_its_session_ended(client):  # type: ignore[no-untyped-def]
    """Walked at 1440x900 (hwalk15): a new user opening the workbench's address for the first time was sent to sign
    in with "Sign in to go on to /; if you were signed in, your session has ended." The home page is where signing
    in goes anyway: the form says nothing more there."""
    sent = client.get("/", follow=True)
    assert sent.redirect_chain[-1][0] == "/login/?next=/"
    page = sent.content.decode()
    assert 'id="signin-next"' not in page and "session has ended" not in page
    assert 'name="next" value="/"' in page  # signing in still goes on to the home page
