"""Finding personal data: a candidate regular expression per type, confirmed by a validator.

The regular expressions are deliberately loose (they find everything shaped like an entity); the
validators are strict: phone numbers must be valid numbers for a region (phonenumbers), cards must
pass Luhn and start with a card network's prefix, IBANs and national ids must pass their check
digits (python-stdnum), IP addresses must parse (ipaddress). A candidate that fails as a whole is
tried again without its leading or trailing groups, so that "order 4711 030 1234567" still yields
the phone number at its end.

The patterns begin with a character class and check what precedes it in a lookbehind placed after
that first character: a pattern that begins with a lookbehind cannot use the regular expression
engine's fast scan for its first character, and costs several times more on long text.

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
    """E-mail addresses (Unicode local parts and domains included).

    The pattern runs only around each "@" (an address's local part has at most 64 characters, its
    domain at most 255), not over the whole text."""
    at = text.find("@")
    end = 0
    while at >= 0:
        if at >= end:
            match = _EMAIL.search(text, max(end, at - 65), at + 256)
            if match is not None and match.start() <= at < match.end():
                end = match.end()
                if ".." not in match.group().partition("@")[0]:
                    yield match.span()
        at = text.find("@", at + 1)


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

_PHONE = re.compile(r"[+(0-9](?<![\w+@./-][+(0-9])[\d \t\u00a0().\-/]{5,24}\d(?![\w@]|[.\-/]\d)")
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
        self._lengths = {region: _national_lengths(region) for region in self.regions}

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
            return _valid_number(international)
        if candidate.isdigit():
            return False
        digits_only = "".join(char for char in candidate if char.isdigit())
        return any(
            _grouped_number(candidate, region)
            for region in self.regions
            if _plausible(digits_only, *self._lengths[region])
        )

    def find(self, text: str, taken: Sequence[tuple[int, int]] = ()) -> Finds:
        """Phone numbers in ``text``. A candidate is taken as a whole, except that an international
        one may lose trailing groups ("+49 30 12345678 2024"): shorter runs of a national candidate
        are too often valid by accident (the tail of an account number). Candidates overlapping a
        ``taken`` span (a card, an IBAN, an address found already) are not validated at all: digits
        that belong to another entity are not a phone number, and phone validation is the slowest
        check."""
        for match in _PHONE.finditer(text):
            start, end = match.span()
            if any(low < end and start < high for low, high in taken):
                continue
            if self.valid(match.group()):
                yield start, end
            elif match.group().startswith(("+", "00")):
                groups = _groups(match.group(), _SPACES)
                for _, group_end in reversed(groups[:-1]):
                    if self.valid(text[start : start + group_end]):
                        yield start, start + group_end
                        break


def _national_lengths(region: str) -> tuple[str, frozenset[int]]:
    """The national prefix of ``region`` and the lengths its national significant numbers have."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.general_desc is None:
        return "", frozenset(range(4, 18))
    return metadata.national_prefix or "", frozenset(metadata.general_desc.possible_length or range(4, 18))


def _plausible(digits: str, prefix: str, lengths: frozenset[int]) -> bool:
    """A cheap test before parsing: could ``digits`` be a national number of this length?"""
    if prefix and digits.startswith(prefix):
        return len(digits) - len(prefix) in lengths or len(digits) in lengths
    return len(digits) in lengths


def _valid_number(candidate: str) -> bool:
    """True when ``candidate``, written with its country code, is a valid number."""
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(candidate, None)))
    except phonenumbers.NumberParseException:
        return False


def _grouped_number(candidate: str, region: str) -> bool:
    """True when ``candidate`` is a valid number for ``region`` and grouped as that region groups it."""
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return False
    if not phonenumbers.is_valid_number(number):
        return False
    # The matcher is slower than parsing; it runs only on numbers already known to be valid.
    matches = phonenumbers.PhoneNumberMatcher(
        candidate, region, leniency=phonenumbers.Leniency.STRICT_GROUPING
    )
    return any(match.start == 0 and match.end == len(candidate) for match in matches)


# --- payment cards ------------------------------------------------------------------------------

_CARD = re.compile(r"[0-9](?<![\w.,+-][0-9])(?:[ -]?\d){12,22}(?![\w]|[.,-]\d)")
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
# Matched from the check digits, which are rarer than letters, with the country code in a lookbehind.
_IBAN = re.compile(r"[0-9](?<=(?<!\w)[A-Za-z]{2}[0-9])[0-9](?: ?[A-Z0-9]){11,30}(?!\w)")
COUNTRY = 2
IBAN_GROUPS = 10


def valid_iban(candidate: str) -> bool:
    """True when ``candidate`` is an IBAN: the country's length and the mod-97 check."""
    return bool(iban.is_valid(candidate.upper()))


def find_ibans(text: str) -> Finds:
    """IBANs, compact or in groups."""
    for match in _IBAN.finditer(text):
        found = _first_valid(text, match.start() - COUNTRY, match.end(), valid_iban, _SPACES, IBAN_GROUPS)
        if found is not None:
            yield found


# --- national ids -------------------------------------------------------------------------------


def _nino(candidate: str) -> bool:
    """A UK National Insurance number: the prefixes HMRC never issues are refused (format rules only;
    a NINO has no check digit)."""
    compact = candidate.replace(" ", "")
    return compact[:2] not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


class Keyword:
    """A keyword that must name a number shortly before it; ``hints`` are lower-case substrings of
    its forms, tested first because a case-insensitive pattern over the whole text is slow."""

    def __init__(self, pattern: str, hints: tuple[str, ...]) -> None:
        self.pattern = re.compile(pattern, re.IGNORECASE)
        self.hints = hints

    def anywhere(self, lowered: str) -> bool:
        """Whether the (lower-cased) text may name the number at all."""
        return any(hint in lowered for hint in self.hints)

    def before(self, text: str, start: int) -> bool:
        """Whether the keyword occurs in the `CONTEXT_CHARS` before ``start``."""
        return self.pattern.search(text, max(0, start - CONTEXT_CHARS), start) is not None


# (candidate, validator, keyword required shortly before or None)
_NATIONAL_IDS: tuple[tuple[re.Pattern[str], Validator, Keyword | None], ...] = (
    # US Social Security number, written 123-45-6789 or 123 45 6789.
    (
        re.compile(r"[0-9](?<![\w-][0-9])\d{2}([- ])\d{2}\1\d{4}(?![\w-])"),
        lambda value: bool(ssn.is_valid(value.replace(" ", "-"))),
        None,
    ),
    # UK National Insurance number.
    (
        re.compile(r"[A-CEGHJ-PR-TW-Z](?<!\w[A-Z])[A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?!\w)"),
        _nino,
        None,
    ),
    # French social security number (NIR), 15 characters with its key.
    (
        re.compile(r"[12](?<!\w[12]) ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}(?!\w)"),
        nir.is_valid,
        None,
    ),
    # Spanish DNI and NIE, with their check letter.
    (re.compile(r"[0-9](?<!\w[0-9])\d{7}-?[A-Z](?!\w)"), dni.is_valid, None),
    (re.compile(r"[XYZ](?<!\w[XYZ])-?\d{7}-?[A-Z](?!\w)"), nie.is_valid, None),
    # Italian codice fiscale (letters may replace digits: omocodia).
    (
        re.compile(
            r"[A-Z](?<!\w[A-Z])[A-Z]{5}[\dLMNP-V]{2}[A-EHLMPR-T][\dLMNP-V]{2}[A-Z][\dLMNP-V]{3}[A-Z](?!\w)"
        ),
        codicefiscale.is_valid,
        None,
    ),
    # German tax id (Steuer-IdNr): eleven digits, only after a keyword naming it.
    (
        re.compile(r"[0-9](?<![\d.,-][0-9])\d ?\d{3} ?\d{3} ?\d{3}(?!\d|[.,-]\d)"),
        idnr.is_valid,
        Keyword(
            r"steuer[- ]?id|identifikationsnummer|\bidnr|\btax[- ]?id|\btin\b",
            ("steuer", "ident", "idnr", "tax", "tin"),
        ),
    ),
    # Dutch citizen service number (BSN): nine digits, only after a keyword naming it.
    (
        re.compile(r"[0-9](?<![\d.,-][0-9])(?:\d{3}\.?\d{2}\.?\d{3}|\d{2} ?\d{3} ?\d{3})(?!\d|[.,-]\d)"),
        bsn.is_valid,
        Keyword(r"\bbsn\b|burgerservicenummer|sofi-?nummer", ("bsn", "burgerservice", "sofi")),
    ),
)


def find_national_ids(text: str) -> Finds:
    """National identity and tax numbers of the countries above."""
    lowered = text.lower()
    for pattern, valid, keyword in _NATIONAL_IDS:
        if keyword is not None and not keyword.anywhere(lowered):
            continue
        for match in pattern.finditer(text):
            if keyword is not None and not keyword.before(text, match.start()):
                continue
            if valid(match.group()):
                yield match.span()


# --- IP addresses -------------------------------------------------------------------------------

_IPV4 = re.compile(r"[0-9](?<![\w.][0-9])\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?![\w:]|\.\w)"
)
_IPV6_HINT = re.compile(r"[0-9A-Fa-f:]:[0-9A-Fa-f]{0,4}:")
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
    if _IPV6_HINT.search(text):
        for match in _IPV6.finditer(text):
            value = match.group()
            if sum(char not in ":." for char in value) < 2:
                continue
            try:
                ipaddress.IPv6Address(value)
            except ValueError:
                continue
            yield match.span()
