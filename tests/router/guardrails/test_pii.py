"""The personal-data finders: what each validator accepts, and the look-alikes it refuses."""

from __future__ import annotations

import pytest

from inferflux.router.guardrails.pii import (
    PhoneFinder,
    find_cards,
    find_emails,
    find_ibans,
    find_ip_addresses,
    find_national_ids,
    valid_card,
    valid_iban,
)


def found(finds: object, text: str) -> list[str]:
    return [text[a:b] for a, b in finds]  # type: ignore[attr-defined]


def test_emails_unicode_and_tagged() -> None:
    text = "an jürgen.müller@beispiel.de und ops+alerts@mail.example.co.uk."
    assert found(find_emails(text), text) == ["jürgen.müller@beispiel.de", "ops+alerts@mail.example.co.uk"]


@pytest.mark.parametrize(
    "text",
    ["git@github.com:org/repo.git", "alice@localhost", "@app.route('/x')", "a..b@example.com", "pkg@1.2.3"],
)
def test_not_emails(text: str) -> None:
    assert found(find_emails(text), text) == []


PHONES = PhoneFinder(["US", "GB", "DE", "FR"])


@pytest.mark.parametrize(
    "number",
    [
        "+1 415 555 2671",
        "(212) 555-0143",
        "+44 20 7946 0958",
        "030 / 2345 6789",
        "01 23 45 67 89",
        "0049 89 98765432",
    ],
)
def test_phone_numbers(number: str) -> None:
    text = f"call {number} today"
    assert found(PHONES.find(text), text) == [number]


@pytest.mark.parametrize(
    "text",
    [
        "order 4155552671 shipped",  # a bare run of digits
        "Bestellnummer 4711 0815",  # valid digits for Germany, but not grouped as a German number
        "invoice 2024-000123",
        "on 2024-03-15 at 14:30:00",
        "ISBN 978-0-306-40615-7",
        "call +1 234",  # too short
    ],
)
def test_not_phone_numbers(text: str) -> None:
    assert found(PHONES.find(text), text) == []


def test_national_numbers_are_read_only_for_the_configured_regions() -> None:
    text = "Ligue 06 12 34 56 78"
    assert found(PhoneFinder(["US"]).find(text), text) == []
    assert found(PhoneFinder(["FR"]).find(text), text) == ["06 12 34 56 78"]
    assert PhoneFinder(["XX", "US"]).regions == ("US",)


def test_an_international_number_followed_by_another_number_loses_the_tail() -> None:
    text = "Tel +49 30 12345678 2024"
    assert found(PHONES.find(text), text) == ["+49 30 12345678"]


@pytest.mark.parametrize(
    "number",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "378282246310005",
        "3782 822463 10005",
        "6011000990139424",
    ],
)
def test_cards(number: str) -> None:
    assert valid_card(number)
    text = f"card {number}, exp 12/27"
    assert found(find_cards(text), text) == [number]


@pytest.mark.parametrize(
    "number",
    [
        "4111 1111 1111 1112",  # Luhn fails
        "1700000000123456",  # Luhn passes, no card network starts with 1
        "490154203237518",  # an IMEI: Luhn passes, but Visa numbers have 16 or 19 digits
        "4006381333931",  # an EAN-13 barcode
        "4111 1111-1111 1111",  # two kinds of separator
        "41 11 11 11 11 11 11 11",  # not grouped like a card
    ],
)
def test_not_cards(number: str) -> None:
    assert not valid_card(number)


def test_a_card_glued_to_another_number_is_still_found() -> None:
    text = "Visa 4111 1111 1111 1111 12"
    assert found(find_cards(text), text) == ["4111 1111 1111 1111"]


def test_ibans_compact_grouped_and_followed_by_words() -> None:
    text = "IBAN DE89 3704 0044 0532 0130 00 FOR rent, or FR1420041010050500013M02606."
    assert found(find_ibans(text), text) == ["DE89 3704 0044 0532 0130 00", "FR1420041010050500013M02606"]
    assert not valid_iban("DE89 3704 0044 0532 0130 01")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("SSN 123-45-6789", "123-45-6789"),
        ("SSN 219 45 1234", "219 45 1234"),
        ("NINO AB 12 34 56 C", "AB 12 34 56 C"),
        ("NIR 2 55 08 14 168 025 38", "2 55 08 14 168 025 38"),
        ("DNI 12345678Z", "12345678Z"),
        ("NIE X1234567L", "X1234567L"),
        ("CF RSSMRA85T10A562S", "RSSMRA85T10A562S"),
        ("Steuer-ID 36574261809, bitte", "36574261809"),
        ("BSN 1112.22.333", "1112.22.333"),
    ],
)
def test_national_ids(text: str, value: str) -> None:
    assert found(find_national_ids(text), text) == [value]


@pytest.mark.parametrize(
    "text",
    [
        "SSN 000-12-3456",  # area 000 is never issued
        "SSN 078-05-1120",  # the wallet-insert number
        "NINO GB 12 34 56 A",  # a prefix never issued
        "Rechnung 36574261809",  # a valid tax id's digits, but nothing says it is one
        "Order 111222333",  # a valid BSN's digits, no keyword
        "DNI 12345678A",  # wrong check letter
    ],
)
def test_not_national_ids(text: str) -> None:
    assert found(find_national_ids(text), text) == []


def test_ip_addresses() -> None:
    text = "from 192.168.1.10:8080, 2001:db8::8a2e:370:7334 and ::ffff:192.0.2.128."
    assert found(find_ip_addresses(text), text) == [
        "192.168.1.10",
        "192.0.2.128",
        "2001:db8::8a2e:370:7334",
        "::ffff:192.0.2.128",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "version 1.2.3.4",
        "v10.0.0.1",
        "Section 4.2.1.3",
        "Kapitel 3.1.4.2",
        "OID 1.3.6.1.4.1.311",
        "999.10.10.10",
        "MAC 00:1A:2B:3C:4D:5E",
        "at 12:30:45",
        "std::vector",
    ],
)
def test_not_ip_addresses(text: str) -> None:
    assert found(find_ip_addresses(text), text) == []
