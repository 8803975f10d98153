"""Finding secrets: API keys of known formats, private-key blocks, assigned passwords, random tokens.

Three kinds of evidence, strongest first:
- a known prefix and shape (OpenAI and Anthropic ``sk-``, GitHub ``ghp_``, AWS ``AKIA``, Slack
  ``xoxb-``, InferFlux ``ifx_``, Stripe, GitLab, Google, Hugging Face, npm, JWTs) or a PEM private
  key block (one whose END line has not come yet runs to the end of the text);
- a value assigned to a word that names a secret (``password: …``, ``api_key=…``, ``Passwort: …``),
  and the password in a URL's user information (``scheme://user:password@host``);
- a long token that looks random: at least `MIN_RANDOM` characters mixing upper case, lower case and
  digits, not mostly made of word-like runs (as identifiers are), and with a Shannon entropy near
  that of random text of its length. Hexadecimal strings (hashes, UUIDs) are not reported on
  entropy alone: they are far more often digests than keys.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator

Finds = Iterator[tuple[int, int]]

MIN_RANDOM = 32
MAX_RANDOM = 256
# Identifiers and compound words are mostly made of word-like runs ("get", "User", "Profile");
# random tokens have some too, but in 99.9 % of 32-character ones they cover less than this share.
WORDLIKE_SHARE = 0.75

_KNOWN = re.compile(
    r"(?<![\w-])(?:"
    r"sk-(?:proj-|ant-(?:api\d\d-)?|svcacct-|admin-)?(?=[A-Za-z_-]*\d)[A-Za-z0-9_-]{20,}"
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{22,}"
    r"|glpat-[A-Za-z0-9_-]{20,}"
    r"|(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|ifx_[a-z2-7]{16}_[A-Za-z0-9_-]{43}"
    r"|AIza[0-9A-Za-z_-]{35}"
    r"|hf_[A-Za-z0-9]{30,}"
    r"|npm_[A-Za-z0-9]{36}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    r")(?![\w-])"
)
_PEM = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|.*\Z)",
    re.DOTALL,
)
PEM_BEGIN = "-----BEGIN "
# ``password: value``: the value (group 1) is the secret. The keyword list is multilingual.
_ASSIGNED = re.compile(
    # The first letter is matched case by case and the rest case-insensitively: a pattern that is
    # case-insensitive from its start is scanned character by character, many times slower.
    r"[PpKkMmCcAaSsTt](?<!\w[PpKkMmCcAaSsTt])(?i:assword|asswd|wd|assphrase|asswort|ennwort|ot de passe|"
    r"ontrase[nñ]a|pi[_ -]?key|ecret[_ -]?key|lient[_ -]?secret|ccess[_ -]?token|uth[_ -]?token|oken)"
    r"[\"']?\s*(?:[:=]|\bis\b|\bist\b|\best\b|\bes\b)\s*[\"']?([^\s\"',;)\]}>]{6,128})"
)
_URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]{1,15}://[^\s:/@]{1,64}:([^\s/@]{1,128})@", re.IGNORECASE)
# Base64 pads with '=' only at the end; an '=' inside is an assignment (KEY=value), not part of a token.
_TOKEN = re.compile(
    r"[A-Za-z0-9+/_-](?<![\w+/.-][A-Za-z0-9+/_-])"
    rf"[A-Za-z0-9+/_-]{{{MIN_RANDOM - 1},{MAX_RANDOM - 1}}}={{0,2}}(?![\w+/=-])"
)
_WORDLIKE = re.compile(r"[A-Z]?[a-z]{3,}|[A-Z]{4,}")


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text`` by the frequency of its characters."""
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in Counter(text).values())


def entropy_floor(length: int) -> float:
    """The entropy below which a token of ``length`` characters does not look random.

    Random alphanumeric text of 32 characters measures about 4.5 bits per character (1 % of it below
    4.2), of 64 characters about 5.2 (1 % below 4.9); the floor stays below both."""
    return 3.9 + 0.6 * min(1.0, (length - MIN_RANDOM) / MIN_RANDOM)


def looks_random(token: str) -> bool:
    """True when ``token`` reads like a generated secret rather than a word, identifier or digest."""
    if not (
        any(c.isdigit() for c in token)
        and any(c.isupper() for c in token)
        and any(c.islower() for c in token)
    ):
        return False
    if sum(len(run) for run in _WORDLIKE.findall(token)) >= WORDLIKE_SHARE * len(token):
        return False
    return shannon_entropy(token) >= entropy_floor(len(token))


def _secret_like(value: str) -> bool:
    """An assigned value is a secret unless it is a plain word ("the password is correct.")."""
    word = value.rstrip(".!?:")
    return not word.isalpha() or not (word.islower() or word.istitle())


# Each known format starts with one of these; when none is in the text, its pattern is not run.
KNOWN_PREFIXES = (
    "sk-", "sk_", "rk_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "AKIA", "ASIA",
    "ABIA", "ACCA", "xox", "ifx_", "AIza", "hf_", "npm_", "eyJ",
)  # fmt: skip
ASSIGNED_HINTS = ("pass", "pwd", "kennwort", "contrase", "key", "secret", "token")
# The tests that gate each pattern: a streamed answer is scanned once per event, so these are
# counted (docs/router.md, session 16).
_ANY_ASSIGNED_HINT = re.compile("|".join(map(re.escape, ASSIGNED_HINTS)))
_LONG_WORD = re.compile(rf"\S{{{MIN_RANDOM}}}")  # a run of MIN_RANDOM characters without whitespace


def _may_hold_a_known_prefix(text: str) -> bool:
    """False when ``text`` holds none of the marks one of which every known prefix holds (so none of
    `KNOWN_PREFIXES`): most text holds none, and these nine substring tests cost a quarter of
    looking for the twenty prefixes."""
    return (
        "-" in text
        or "_" in text
        or "AK" in text
        or "AS" in text
        or "AB" in text
        or "AC" in text
        or "AI" in text
        or "xox" in text
        or "eyJ" in text
    )


def find_secrets(text: str) -> Finds:
    """Secrets in ``text``."""
    if _may_hold_a_known_prefix(text) and any(prefix in text for prefix in KNOWN_PREFIXES):
        for match in _KNOWN.finditer(text):
            yield match.span()
    if PEM_BEGIN in text:
        for match in _PEM.finditer(text):
            yield match.span()
    if _ANY_ASSIGNED_HINT.search(text.lower()):
        for match in _ASSIGNED.finditer(text):
            if _secret_like(match.group(1)):
                yield match.span(1)
    if "://" in text:
        for match in _URL_PASSWORD.finditer(text):
            yield match.span(1)
    if _LONG_WORD.search(text):
        for match in _TOKEN.finditer(text):
            if looks_random(match.group()):
                yield match.span()
