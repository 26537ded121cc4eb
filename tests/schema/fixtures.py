"""Creates what the fixed parameters of schemathesis.toml name and prints their ids:
SIP credentials (Dasha) for the phone numbers to use, an Ultravox registration for
/v1/registrations/{id}, a spare tenant whose API key (prefix) the admin run revokes, and a
webhook for /v1/webhooks/{id} (which the run deletes) and another for its deliveries.

usage: fixtures.py BASE_URL API_KEY ADMIN_TOKEN
"""

import json
import sys
import urllib.request

# Characters of an API key that form its public lookup prefix (trunkline-core `secret`).
KEY_PREFIX_LEN = 12


def post(url, path, body, headers):
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def main():
    url, key, admin_token = sys.argv[1:]
    # Paced at 2 per second, so call pacing answers both 200 and 429.
    trunk = post(url, "/api/v1/sip-credentials", {"server": "pbx.example.com", "cpsLimit": 2},
                 {"Authorization": f"Bearer {key}"})
    registration = post(url, "/api/sip/registrations",
                        {"username": "alice", "password": "secret", "proxy": "sip.example.com"},
                        {"X-API-Key": key})
    spare = post(url, "/v1/admin/tenants", {"name": "schema spare"},
                 {"Authorization": f"Bearer {admin_token}"})
    # Disabled: nothing is sent to them.
    webhooks = [post(url, "/v1/webhooks", {"url": "http://127.0.0.1:9/schema", "enabled": False},
                     {"X-API-Key": key})["id"] for _ in range(2)]
    print(trunk["id"], registration["registrationId"], spare["api_key"][:KEY_PREFIX_LEN],
          *webhooks)


if __name__ == "__main__":
    main()
