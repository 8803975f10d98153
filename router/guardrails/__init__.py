"""Guardrails on the router's request path: the PII filter, injection rules, size and topic limits.

The filter finds personal data and secrets in the text a request carries (and in the answer), and
applies each tenant's `GuardrailPolicy` (``inferflux.crds.guardrails``): allow, detect, redact with a
typed placeholder, or block. Candidate spans come from regular expressions; validators from
well-kept libraries (phonenumbers, python-stdnum, ipaddress) confirm them, so that order numbers,
ISBNs, dates and version strings are not mistaken for personal data. docs/guardrails.md has the
details and the measured recall and false-positive rates.
"""
