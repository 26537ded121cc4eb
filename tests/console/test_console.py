"""The web console (GET /ui/) in headless Chromium against the real binary and real SIP peers:
sign in with the API key; a registration created through the API after the page loaded
appears and turns registered without a reload (the page follows GET /v1/events); its attempt
history; the filter to failed registrations; trunks and their numbers; an inbound binding
appearing live when a device (sipsak) registers; a webhook endpoint with its failed delivery
attempts; no error in the browser's console; the layout at a phone's width; the event stream
resuming with Last-Event-ID after the server restarted; a wrong key answered with a visible
error. Every wait is a WebDriverWait on a condition of the page."""

from __future__ import annotations

import socket
import urllib.request

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from peers import sipsak_register

WAIT_S = 20


def wait(driver, condition, message: str, timeout: float = WAIT_S):
    return WebDriverWait(driver, timeout).until(condition, message)


def listed_users(driver) -> list[str]:
    """The user or number of each row of the registrations table, top to bottom."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#registration-table tbody tr a')]"
        ".map(a => a.textContent)"
    )


def state_of(driver, user: str):
    """The state badge of ``user``'s row, or None while it is not listed."""
    return driver.execute_script(
        "const row = [...document.querySelectorAll('#registration-table tbody tr')]"
        "  .find(r => r.querySelector('a')?.textContent === arguments[0]);"
        "return row ? row.querySelector('[data-state]').dataset.state : null;",
        user,
    )


def severe_console_entries(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def sign_in(driver, key: str) -> None:
    field = wait(driver, ec.element_to_be_clickable((By.ID, "api-key")), "no sign-in form")
    field.clear()
    field.send_keys(key, Keys.ENTER)  # the keyboard alone signs in


def test_the_page_is_served_with_a_strict_policy(server):
    for path, content_type in [("/ui/", "text/html"), ("/ui/console.js", "text/javascript"),
                               ("/ui/console.css", "text/css")]:
        with urllib.request.urlopen(server.base_url + path, timeout=10) as response:
            assert response.status == 200, path
            assert response.headers["Content-Type"].startswith(content_type), path
            policy = response.headers["Content-Security-Policy"]
            assert "default-src 'none'" in policy and "script-src 'self'" in policy, policy
            assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_console(server, api, registrars, browser):
    accepting, refusing = registrars
    driver = browser
    key = server.default_tenant.api_key
    account = server.default_tenant.account_id

    # Before the page loads: a registration the registrar refuses, a trunk with a number,
    # an inbound credential without a device yet.
    api.create("/api/sip/registrations", "ultravox",
               {"username": "bob-denied", "password": "wrong-password", "proxy": refusing.address})
    trunk = api.create("/api/v1/sip-credentials", "dasha",
                       {"server": "pbx.example.com", "description": "Main carrier"})
    api.create("/api/v1/sip-phone-numbers", "dasha",
               {"phoneNumber": "+14155550100", "credentialsId": trunk["id"], "registration": False})
    api.create(f"/api/v1/account/{account}/credentials", "vobiz",
               {"username": "desk-phone", "password": "device-secret-1"})

    driver.get(server.base_url + "/ui/")
    sign_in(driver, key)
    wait(driver, ec.text_to_be_present_in_element((By.ID, "account"), account), "not signed in")
    wait(driver, ec.text_to_be_present_in_element((By.ID, "live"), "Live updates: on"),
         "the event stream did not connect")
    wait(driver, lambda d: state_of(d, "bob-denied") == "failed_auth", "bob-denied not failed")
    assert driver.execute_script("return sessionStorage.getItem('trunkline.apiKey')") == key
    assert driver.execute_script("return localStorage.length") == 0, "the key is for this tab only"
    unlabelled = driver.execute_script(
        "return [...document.querySelectorAll('input, select')]"
        ".filter(e => e.labels.length === 0).map(e => e.id)"
    )
    assert unlabelled == [], f"form fields without a label: {unlabelled}"

    # Created after the page loaded: it appears and turns registered, without a reload.
    driver.execute_script("window.consoleNotReloaded = true")
    created = api.create("/api/sip/registrations", "ultravox",
                         {"username": "alice-ok", "password": "secret", "proxy": accepting.address})
    wait(driver, lambda d: state_of(d, "alice-ok") == "registered",
         "alice-ok did not appear as registered")
    assert driver.execute_script("return window.consoleNotReloaded") is True, "the page reloaded"
    assert listed_users(driver)[0] == "bob-denied", "failing ones first"
    assert "Failed 1" in driver.find_element(By.CSS_SELECTOR, "[role=group]").text

    # Its status and attempt history.
    driver.find_element(By.LINK_TEXT, "alice-ok").click()
    wait(driver, ec.text_to_be_present_in_element((By.ID, "registration-title"), created["registrationId"]),
         "no detail view")
    wait(driver, ec.text_to_be_present_in_element((By.ID, "registration-history"), "200 OK"),
         "no attempt in the history")
    history = driver.find_element(By.ID, "registration-history").text
    assert "REGISTER sip:" in history, history
    assert driver.find_element(By.CSS_SELECTOR, "#registration-status [data-state]").get_attribute(
        "data-state") == "registered"

    # Back to the list, filtered to failed ones.
    driver.find_element(By.LINK_TEXT, "← All registrations").click()
    wait(driver, lambda d: "alice-ok" in listed_users(d), "the list did not come back")
    Select(driver.find_element(By.ID, "state-filter")).select_by_value("failed")
    wait(driver, lambda d: listed_users(d) == ["bob-denied"], "the failed filter")
    assert driver.find_element(By.CSS_SELECTOR, "[data-state='failed'][aria-pressed='true']")

    # Trunks and their numbers.
    driver.find_element(By.LINK_TEXT, "Trunks and numbers").click()
    wait(driver, ec.text_to_be_present_in_element((By.ID, "main"), "+14155550100"),
         "the trunk's number is not shown")
    assert "Main carrier" in driver.find_element(By.ID, "main").text

    # A webhook endpoint nobody listens on: the events from here on are attempted there.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    hook_url = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"
    closed.close()
    api.create("/v1/webhooks", "ultravox", {"url": hook_url, "types": ["binding.created"]})

    # An inbound credential: a device registers while the page shows it.
    driver.find_element(By.LINK_TEXT, "Inbound credentials").click()
    wait(driver, ec.text_to_be_present_in_element((By.ID, "main"), "No device is registered."),
         "the credential is not shown")
    contact = sipsak_register(server.sip_address, f"{account}.sip.localhost",
                              "desk-phone", "device-secret-1")
    wait(driver, ec.text_to_be_present_in_element((By.ID, "main"), contact),
         f"the binding {contact} did not appear")
    assert driver.execute_script("return window.consoleNotReloaded") is True, "the page reloaded"

    # The webhook endpoint with its recent deliveries: the binding's event, failed, retried.
    # The table of attempts is there only once one was made (the page refreshes on events).
    driver.find_element(By.LINK_TEXT, "Webhooks").click()
    wait(driver, ec.text_to_be_present_in_element((By.ID, "main"), "Recent deliveries to " + hook_url),
         "no delivery attempt shown")
    attempts = driver.find_element(By.CSS_SELECTOR, "#main table").text
    assert "binding.created" in attempts and "evt_" in attempts, attempts

    # Nothing went wrong in the page.
    assert severe_console_entries(driver) == []

    # A phone's width: nothing wider than the screen.
    driver.find_element(By.LINK_TEXT, "Registrations").click()
    wait(driver, lambda d: "alice-ok" in listed_users(d), "the list at phone width")
    driver.set_window_size(390, 844)
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{overflow} px wider than a phone's screen"
    driver.set_window_size(1280, 900)

    # A dropped stream resumes after the last event it saw (Last-Event-ID): the server
    # restarts, and while the page cannot reconnect (its event requests blocked) a registration
    # registers; once it can, the event it missed is replayed and announced.
    driver.execute_script(
        "window.announced = [];"
        "const node = document.getElementById('announcer');"
        "new MutationObserver(() => window.announced.push(node.textContent))"
        "  .observe(node, {childList: true, characterData: true, subtree: true});"
    )
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/v1/events*"]})
    server.restart()
    wait(driver, ec.text_to_be_present_in_element((By.ID, "live"), "reconnecting"),
         "the page did not notice the drop")
    missed = api.create("/api/sip/registrations", "ultravox",
                        {"username": "carol-missed", "password": "secret", "proxy": accepting.address})
    missed_id = missed["registrationId"]
    wait(driver, lambda _: any(e["data"]["id"] == missed_id for e in api.call(
        "GET", "/v1/events?after=0&types=registration.registered", "ultravox")[1]["items"]),
        "carol-missed was never announced by the server")
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    wait(driver, lambda d: f"Registration {missed_id}: registered" in d.execute_script(
        "return window.announced"), "the missed event was not replayed after the reconnect")
    wait(driver, lambda d: state_of(d, "carol-missed") == "registered", "carol-missed not listed")
    assert driver.execute_script("return window.consoleNotReloaded") is True, "the page reloaded"
    # Only the event stream failed while the server was away or blocked.
    others = [e for e in severe_console_entries(driver) if "/v1/events" not in e["message"]]
    assert others == []

    # A wrong key: an error, not an empty page.
    driver.find_element(By.ID, "sign-out").click()
    sign_in(driver, key + "x")
    alert = wait(driver, ec.visibility_of_element_located((By.CSS_SELECTOR, "[role=alert]")),
                 "no error for a wrong key")
    assert "not accepted" in alert.text, alert.text
    assert driver.find_element(By.ID, "api-key").is_displayed()
    assert driver.execute_script("return sessionStorage.getItem('trunkline.apiKey')") is None
