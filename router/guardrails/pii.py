"""Finding personal data: a candidate regular expression per type, confirmed by a validator.

The regular expressions are deliberately loose (they find everything shaped like an entity); the
validators are strict: phone numbers must be valid numbers for a region (phonenumbers), cards must
pass Luhn and start with a card network's prefix, IBANs and national ids must pass their check
digits (python-stdnum), IP addresses must parse (ipaddress). A candidate that fails as a whole is
tried again without its leading or trailing groups, so that "order 4711 030 1234567" still yields
the phone number at its end.

National ids without a check structure of their own (the German tax id, the Dutch BSN: eleven and
nine plain digits) are only reported with a keyword naming them shortly before, since a bare run of
digits is far more often an order or invoice number.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence

import phonenumbers
from stdnum import iban, luhn
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.us import ssn

Validator = Callable[[str], bool]
Finds = Iterator[tuple[int, int]]

# How far before a number a keyword naming it is looked for, and how many groups a candidate may
# have before it is not worth splitting into shorter ones.
CONTEXT_CHARS = 48
MAX_GROUPS = 7

# --- e-mail -------------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.%+-])[\w%+-](?:[\w.%+-]{0,62}[\w%+-])?@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,24}(?![\w-]|:[\w/~])"
)


def find_emails(text: str) -> Finds:
    """E-mail addresses (Unicode local parts and domains included)."""
    if "@" not in text:
        return
    for match in _EMAIL.finditer(text):
        local = match.group().partition("@")[0]
        if ".." not in local:
            yield match.span()


# --- splitting a candidate into groups ----------------------------------------------------------


def _groups(candidate: str, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    """(start, end) of each group of ``candidate`` between separators."""
    bounds: list[tuple[int, int]] = []
    position = 0
    for gap in separator.finditer(candidate):
        if gap.start() > position:
            bounds.append((position, gap.start()))
        position = gap.end()
    if position < len(candidate):
        bounds.append((position, len(candidate)))
    return bounds


def _first_valid(
    text: str,
    start: int,
    end: int,
    valid: Validator,
    separator: re.Pattern[str],
    max_groups: int = MAX_GROUPS,
) -> tuple[int, int] | None:
    """The longest run of whole groups of ``text[start:end]`` that ``valid`` accepts, if any."""
    candidate = text[start:end]
    if valid(candidate):
        return start, end
    groups = _groups(candidate, separator)
    if len(groups) < 2 or len(groups) > max_groups:
        return None
    for size in range(len(groups) - 1, 0, -1):
        for first in range(len(groups) - size + 1):
            low, high = groups[first][0], groups[first + size - 1][1]
            if valid(candidate[low:high]):
                return start + low, start + high
    return None


# --- phone numbers ------------------------------------------------------------------------------

_PHONE = re.compile(r"(?<![\w+@./-])(?:\+|\b00)?[(\d][\d \t\u00a0().\-/]{5,24}\d(?![\w@]|[.\-/]\d)")
_SPACES = re.compile(r"[ \t\u00a0]+")
# Dates and times are shaped like numbers with separators; they are never phone numbers.
_DATE = re.compile(r"\d{1,4}([./-])\d{1,2}\1\d{1,4}|\d{1,2}:\d{2}(?::\d{2})?")


class PhoneFinder:
    """Phone numbers: international ones (``+`` or ``00``) for any region, national ones for
    ``regions``. A national number must be written with separators or parentheses (a bare run of
    digits is more often an order or account number), and a number must be grouped the way its
    country writes it (phonenumbers' strict grouping), so "4711 0815" or "2024-000123" are not read
    as numbers that happen to be valid. International numbers need only be valid."""

    def __init__(self, regions: Sequence[str]) -> None:
        supported = phonenumbers.SUPPORTED_REGIONS
        self.regions = tuple(region for region in regions if region in supported)

    def valid(self, candidate: str) -> bool:
        """True when ``candidate`` as a whole is a valid phone number."""
        digits = sum(char.isdigit() for char in candidate)
        if (
            not 7 <= digits <= 15
            or _DATE.fullmatch(candidate)
            or candidate.count("(") != candidate.count(")")
        ):
            return False
        if candidate.startswith(("+", "00")):
            international = "+" + candidate[2:] if candidate.startswith("00") else candidate
            return _grouped_number(international, INTERNATIONAL_REGION, phonenumbers.Leniency.VALID)
        if candidate.isdigit():
            return False
        return any(_grouped_number(candidate, region) for region in self.regions)

    def find(self, text: str) -> Finds:
        """Phone numbers in ``text``. A candidate is taken as a whole, except that an international
        one may lose trailing groups ("+49 30 12345678 2024"): shorter runs of a national candidate
        are too often valid by accident (the tail of an account number)."""
        for match in _PHONE.finditer(text):
            start, end = match.span()
            if self.valid(match.group()):
                yield start, end
            elif match.group().startswith(("+", "00")):
                groups = _groups(match.group(), _SPACES)
                for _, group_end in reversed(groups[:-1]):
                    if self.valid(text[start : start + group_end]):
                        yield start, start + group_end
                        break


# Numbers written with + name their country; the region only serves phonenumbers as a default.
INTERNATIONAL_REGION = "US"


def _grouped_number(
    candidate: str, region: str, leniency: int = phonenumbers.Leniency.STRICT_GROUPING
) -> bool:
    """True when ``candidate`` is a valid number for ``region`` and grouped as that region groups it
    (an international number, whose country code is evidence enough, need only be valid)."""
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return False
    if not phonenumbers.is_valid_number(number):
        return False
    # The matcher is slower than parsing; it runs only on numbers already known to be valid.
    matches = phonenumbers.PhoneNumberMatcher(candidate, region, leniency=leniency)
    return any(match.start == 0 and match.end == len(candidate) for match in matches)


# --- payment cards ------------------------------------------------------------------------------

_CARD = re.compile(r"(?<![\w.,+-])\d(?:[ -]?\d){12,22}(?![\w]|[.,-]\d)")
_CARD_SEPARATOR = re.compile(r"[ -]")


def _card_network(digits: str) -> bool:
    """True when ``digits`` have the prefix and length of a card network's numbers: Visa (16, 19),
    Mastercard (16), American Express (15), Discover, JCB, UnionPay and Maestro (16 to 19), Diners
    Club (14 to 19). Retired 13-digit Visa numbers are left out: 13 digits are far more often an
    EAN barcode."""
    size = len(digits)
    if digits.startswith(("34", "37")):
        return size == 15
    if digits.startswith(("30", "36", "38", "39")):
        return 14 <= size <= 19
    if digits[0] == "4":
        return size in (16, 19)
    if 2221 <= int(digits[:4]) <= 2720 or "51" <= digits[:2] <= "55":
        return size == 16
    return (digits[0] in "56" or digits.startswith("35")) and 16 <= size <= 19


def valid_card(candidate: str) -> bool:
    """True when ``candidate`` is a card number: 13 to 19 digits, one kind of separator, Luhn-valid."""
    separators = {char for char in candidate if not char.isdigit()}
    if len(separators) > 1:
        return False
    if separators:
        # Cards are printed in groups of four (4-6-5 and 4-6-4 for Amex and Diners), so a number in
        # other groups (a French NIR: 1 85 05 78 ...) is not read as one.
        groups = candidate.split(separators.pop())
        if len(groups[0]) != 4 or any(len(group) < 3 for group in groups):
            return False
    digits = candidate.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and _card_network(digits) and luhn.is_valid(digits)


def find_cards(text: str) -> Finds:
    """Payment card numbers."""
    for match in _CARD.finditer(text):
        found = _first_valid(text, match.start(), match.end(), valid_card, _CARD_SEPARATOR)
        if found is not None:
            yield found


# --- IBAN ---------------------------------------------------------------------------------------

# The country code may be lower case; the rest is upper case, so that a following word is not taken
# for a group.
_IBAN = re.compile(r"(?<!\w)[A-Za-z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?!\w)")
IBAN_GROUPS = 10


def valid_iban(candidate: str) -> bool:
    """True when ``candidate`` is an IBAN: the country's length and the mod-97 check."""
    return bool(iban.is_valid(candidate.upper()))


def find_ibans(text: str) -> Finds:
    """IBANs, compact or in groups."""
    for match in _IBAN.finditer(text):
        found = _first_valid(text, match.start(), match.end(), valid_iban, _SPACES, IBAN_GROUPS)
        if found is not None:
            yield found


# --- national ids -------------------------------------------------------------------------------


def _nino(candidate: str) -> bool:
    """A UK National Insurance number: the prefixes HMRC never issues are refused (format rules only;
    a NINO has no check digit)."""
    compact = candidate.replace(" ", "")
    return compact[:2] not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


def _with_context(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# (candidate, validator, keyword required shortly before or None)
_NATIONAL_IDS: tuple[tuple[re.Pattern[str], Validator, re.Pattern[str] | None], ...] = (
    # US Social Security number, written 123-45-6789 or 123 45 6789.
    (
        re.compile(r"(?<![\w-])\d{3}([- ])\d{2}\1\d{4}(?![\w-])"),
        lambda value: bool(ssn.is_valid(value.replace(" ", "-"))),
        None,
    ),
    # UK National Insurance number.
    (
        re.compile(r"(?<!\w)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?!\w)"),
        _nino,
        None,
    ),
    # French social security number (NIR), 15 characters with its key.
    (
        re.compile(r"(?<!\w)[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}(?!\w)"),
        nir.is_valid,
        None,
    ),
    # Spanish DNI and NIE, with their check letter.
    (re.compile(r"(?<!\w)\d{8}-?[A-Z](?!\w)"), dni.is_valid, None),
    (re.compile(r"(?<!\w)[XYZ]-?\d{7}-?[A-Z](?!\w)"), nie.is_valid, None),
    # Italian codice fiscale (letters may replace digits: omocodia).
    (
        re.compile(r"(?<!\w)[A-Z]{6}[\dLMNP-V]{2}[A-EHLMPR-T][\dLMNP-V]{2}[A-Z][\dLMNP-V]{3}[A-Z](?!\w)"),
        codicefiscale.is_valid,
        None,
    ),
    # German tax id (Steuer-IdNr): eleven digits, only after a keyword naming it.
    (
        re.compile(r"(?<![\d.,-])\d{2} ?\d{3} ?\d{3} ?\d{3}(?!\d|[.,-]\d)"),
        idnr.is_valid,
        _with_context(r"steuer[- ]?id|identifikationsnummer|\bidnr|\btax[- ]?id|\btin\b"),
    ),
    # Dutch citizen service number (BSN): nine digits, only after a keyword naming it.
    (
        re.compile(r"(?<![\d.,-])(?:\d{4}\.?\d{2}\.?\d{3}|\d{3} ?\d{3} ?\d{3})(?!\d|[.,-]\d)"),
        bsn.is_valid,
        _with_context(r"\bbsn\b|burgerservicenummer|sofi-?nummer"),
    ),
)


def find_national_ids(text: str) -> Finds:
    """National identity and tax numbers of the countries above."""
    for pattern, valid, keyword in _NATIONAL_IDS:
        for match in pattern.finditer(text):
            if keyword is not None and not keyword.search(
                text, max(0, match.start() - CONTEXT_CHARS), match.start()
            ):
                continue
            if valid(match.group()):
                yield match.span()


# --- IP addresses -------------------------------------------------------------------------------

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?![\w:]|\.\w)"
)
# A dotted quad after these words is a version or a section number, not an address.
_VERSION = re.compile(
    r"(?:\bv|\bversi[oó]ne?|\brelease|\bbuild|\brev(?:ision)?|\bfirmware|\bsection|\bchapter|\bchapitre|"
    r"\bkapitel|\babschnitt|\bcap[ií]tulo|\bcapitolo|\barticle|\bartikel|\bart[ií]culo|\barticolo|"
    r"\bparagra(?:ph|phe|f)|\bclause|\bstep|\bfig(?:ure)?\.?|\btable|§)\s*[:=]?\s*$",
    re.IGNORECASE,
)


def find_ip_addresses(text: str) -> Finds:
    """IPv4 and IPv6 addresses (version strings such as "v1.2.3.4" excepted)."""
    if "." in text:
        for match in _IPV4.finditer(text):
            if _VERSION.search(text, max(0, match.start() - 24), match.start()):
                continue
            try:
                ipaddress.IPv4Address(match.group())
            except ValueError:
                continue
            yield match.span()
    if text.count(":") >= 2:
        for match in _IPV6.finditer(text):
            value = match.group()
            if sum(char not in ":." for char in value) < 2:
                continue
            try:
                ipaddress.IPv6Address(value)
            except ValueError:
                continue
            yield match.span()
