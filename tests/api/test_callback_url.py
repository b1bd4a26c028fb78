"""SSRF rules for callback URLs: refused at submit (400 naming the reason), and again after DNS
resolution at delivery, where the notifier connects to the address it checked.

The refused ranges are IANA's special-purpose registries as Python's ipaddress module encodes
them (https://www.iana.org/assignments/iana-ipv4-special-registry/,
https://www.iana.org/assignments/iana-ipv6-special-registry/), plus the metadata addresses
AWS documents: 169.254.169.254 and fd00:ec2::254
(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html).
"""

from __future__ import annotations

import socket

import pytest

from api_handler.async_api.callback_url import (
    CallbackPolicy,
    UnsafeDestination,
    address_refusal,
    parse_target,
    resolve_public,
)
from tests.api.conftest import Api

PUBLIC = CallbackPolicy()


@pytest.fixture
def callback_api(api: Api) -> Api:
    api.setenv("CALLBACKS_ENABLED", "true")
    return api


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "https://"),
        ("ftp://hooks.example.com/x", "https://"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://127.1/x", "loopback"),  # inet_aton shorthand
        ("https://2130706433/x", "loopback"),  # 127.0.0.1 as one integer
        ("https://0x7f000001/x", "loopback"),
        ("https://10.1.2.3/x", "private"),
        ("https://172.16.0.1/x", "private"),
        ("https://192.168.1.1/x", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://100.64.0.1/x", "not a public address"),  # carrier-grade NAT
        ("https://0.0.0.0/x", "unspecified"),
        ("https://[::1]/x", "loopback"),
        ("https://[fe80::1]/x", "link-local"),
        ("https://[fd00:ec2::254]/latest/meta-data/", "unique local"),
        ("https://[fc00::5]/x", "unique local"),
        ("https://[::ffff:127.0.0.1]/x", "loopback"),  # IPv4-mapped
        ("https://[::ffff:a9fe:a9fe]/x", "link-local"),  # 169.254.169.254, mapped
        ("https://[2002:a00:1::]/x", "private"),  # 6to4 of 10.0.0.1
        ("https://[64:ff9b::a00:1]/x", "private"),  # NAT64 of 10.0.0.1
        ("https://localhost/x", "local name"),
        ("https://metadata.google.internal/x", "local name"),
        ("https://intranet/x", "not a public DNS name"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
        ("https://hooks.example.com/x#frag", "fragment"),
        ("https://hooks.example.com:99999/x", "not a valid URL"),
        ("https://hooks.exam ple.com/x", "visible ASCII"),
        ("https://" + "a" * 2100 + ".com/", "characters"),
    ],
)
def test_refused_at_submit_with_the_reason(callback_api: Api, url: str, reason: str):
    answer = callback_api.submit("hello", "text/plain", X_Callback_Url=url)
    assert answer.status == 400, answer.body
    assert answer.body["error"] == "BadRequest"
    assert "callback URL refused" in answer.body["message"] and reason in answer.body["message"]
    assert callback_api.stub.calls == []  # nothing started


def test_public_https_url_is_accepted_and_stored(callback_api: Api):
    url = "https://hooks.example.com:8443/inference/done?tenant=7"
    answer = callback_api.submit("hello", "text/plain", X_Callback_Url=url)
    assert answer.status == 202, answer.body
    assert callback_api.receipt(answer.body["inferenceId"])["callbackUrl"] == url


def test_upload_reference_carries_the_callback(callback_api: Api):
    import httpx

    form = callback_api.upload("text/plain")
    posted = httpx.post(form["uploadUrl"], data=form["fields"], files={"file": ("x", b"payload")})
    assert posted.status_code in (200, 204), posted.text
    refused = callback_api.submit(f'{{"uploadId": "{form["uploadId"]}", "callbackUrl": "https://10.0.0.1/"}}')
    assert refused.status == 400 and "private" in refused.body["message"]
    url = "https://hooks.example.com/done"
    answer = callback_api.submit(f'{{"uploadId": "{form["uploadId"]}", "callbackUrl": "{url}"}}')
    assert answer.status == 202, answer.body
    assert callback_api.receipt(answer.body["inferenceId"])["callbackUrl"] == url


def test_callback_needs_callbacks_enabled(api: Api):
    answer = api.submit("hello", "text/plain", X_Callback_Url="https://hooks.example.com/x")
    assert answer.status == 400 and "callbacks are not available" in answer.body["message"]


def test_allow_list_per_environment(callback_api: Api):
    callback_api.setenv("CALLBACK_ALLOWED_HOSTS", "hooks.example.com, *.partner.example")
    assert callback_api.submit("a", "text/plain", X_Callback_Url="https://hooks.example.com/x").status == 202
    assert callback_api.submit("b", "text/plain", X_Callback_Url="https://eu.partner.example/x").status == 202
    for url in ("https://evil.example.com/x", "https://partner.example/x", "https://hooks.example.com.evil.io/x"):
        answer = callback_api.submit("c", "text/plain", X_Callback_Url=url)
        assert answer.status == 400 and "allow-list" in answer.body["message"], url


def test_loopback_http_only_when_the_local_pipeline_allows_it(callback_api: Api):
    url = "http://127.0.0.1:8765/hook"
    assert callback_api.submit("a", "text/plain", X_Callback_Url=url).status == 400
    callback_api.setenv("CALLBACK_ALLOW_LOOPBACK_HTTP", "true")
    assert callback_api.submit("a", "text/plain", X_Callback_Url=url).status == 202
    # Even locally: no other plain-http host, and no port-less loopback.
    for other in ("http://10.0.0.1:8765/", "http://localhost:8765/", "http://127.0.0.1/"):
        assert callback_api.submit("a", "text/plain", X_Callback_Url=other).status == 400, other


# ----------------------------------------------------------------------------- at delivery
def _resolver(*addresses: str):
    def family(address: str) -> int:
        return socket.AF_INET6 if ":" in address else socket.AF_INET

    def resolve(host, port, *_args):
        return [(family(a), socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return resolve


@pytest.mark.parametrize(
    "addresses",
    [
        ("10.0.0.7",),
        ("127.0.0.1",),
        ("169.254.169.254",),
        ("::1",),
        ("fd00:ec2::254",),
        ("93.184.215.14", "192.168.0.10"),  # one private answer among public ones
    ],
)
def test_names_resolving_to_private_addresses_are_refused_at_delivery(addresses):
    target = parse_target("https://rebind.example.com/hook", PUBLIC)  # a fine name at submit
    with pytest.raises(UnsafeDestination, match="resolves to"):
        resolve_public(target, PUBLIC, _resolver(*addresses))


def test_public_resolution_gives_the_address_to_connect_to():
    target = parse_target("https://hooks.example.com/hook", PUBLIC)
    assert (
        resolve_public(target, PUBLIC, _resolver("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"))
        == "93.184.215.14"
    )


def test_getaddrinfo_is_what_delivery_consults(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(socket, "getaddrinfo", _resolver("10.9.8.7"))
    target = parse_target("https://hooks.example.com/hook", PUBLIC)
    with pytest.raises(UnsafeDestination, match=r"10\.9\.8\.7 is a private address"):
        resolve_public(target, PUBLIC)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str):
    assert address_refusal(address) is None


# ----------------------------------------------------------------------------- resolved at submit too
def test_a_name_resolving_to_a_private_address_is_refused_at_submit(callback_api: Api, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(socket, "getaddrinfo", _resolver("10.20.30.40"))
    answer = callback_api.submit("hello", "text/plain", X_Callback_Url="https://internal.example.com/hook")
    assert answer.status == 400
    assert "internal.example.com resolves to 10.20.30.40" in answer.body["message"]
    assert callback_api.stub.calls == []  # nothing started


def test_a_name_that_does_not_resolve_yet_is_left_to_delivery(callback_api: Api, monkeypatch: pytest.MonkeyPatch):
    real = socket.getaddrinfo

    def unknown(host, *args):
        if host == "new.example.com":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args)  # moto and the SageMaker stub on 127.0.0.1

    monkeypatch.setattr(socket, "getaddrinfo", unknown)
    assert callback_api.submit("hello", "text/plain", X_Callback_Url="https://new.example.com/hook").status == 202


def test_a_slow_resolver_does_not_hold_the_submit():
    import time

    from api_handler.async_api.callback_url import refusal_at_submit

    def slow(*args):
        time.sleep(1)
        return _resolver("10.0.0.1")(*args)

    assert refusal_at_submit("https://slow.example.com/", PUBLIC, slow, timeout=0.1) is None
    assert "10.0.0.1 is a private address" in refusal_at_submit("https://slow.example.com/", PUBLIC, slow, timeout=3)
