"""Reference code lists shared by the contracts, the generator and the features.

One place for the allowed values of coded columns, so that a new event type or legal form
is added once and every table contract, generator and feature sees it.
"""

from __future__ import annotations

import pycountry

#: ISO 3166-1 alpha-2 country codes (e.g. "DE", "FR").
ISO_COUNTRIES: frozenset[str] = frozenset(c.alpha_2 for c in pycountry.countries)

#: ISO 4217 alphabetic currency codes (e.g. "EUR", "PLN").
ISO_CURRENCIES: frozenset[str] = frozenset(c.alpha_3 for c in pycountry.currencies)

#: NACE Rev. 2 sections: the letter an analyst sees first in a company's activity code.
NACE_SECTIONS: dict[str, str] = {
    "A": "Agriculture, forestry and fishing",
    "B": "Mining and quarrying",
    "C": "Manufacturing",
    "D": "Electricity, gas, steam and air conditioning supply",
    "E": "Water supply, sewerage, waste management",
    "F": "Construction",
    "G": "Wholesale and retail trade",
    "H": "Transportation and storage",
    "I": "Accommodation and food service activities",
    "J": "Information and communication",
    "K": "Financial and insurance activities",
    "L": "Real estate activities",
    "M": "Professional, scientific and technical activities",
    "N": "Administrative and support service activities",
    "O": "Public administration and defence",
    "P": "Education",
    "Q": "Human health and social work activities",
    "R": "Arts, entertainment and recreation",
    "S": "Other service activities",
    "T": "Activities of households as employers",
    "U": "Activities of extraterritorial organisations",
}

#: Legal forms, roughly from the smallest to the largest kind of firm (the generator's
#: size-dependent probabilities follow this order).
LEGAL_FORM_ORDER: tuple[str, ...] = (
    "sole_proprietorship",
    "partnership",
    "private_limited",
    "public_limited",
    "cooperative",
    "other",
)
LEGAL_FORMS: frozenset[str] = frozenset(LEGAL_FORM_ORDER)

#: Legal and payment events. Insolvency, liquidation and claim_filed are default triggers
#: (see the label definition); the others are early-warning signals.
EVENT_TYPES: frozenset[str] = frozenset(
    {
        "insolvency",
        "liquidation",
        "claim_filed",
        "overdue_notification",
        "legal_dispute",
    }
)

#: Trade credit policy schemes: whole turnover from the first euro, or excess of loss
#: (the policyholder keeps an aggregate first loss and sets small limits itself).
POLICY_SCHEMES: frozenset[str] = frozenset({"first_euro", "excess_of_loss"})

#: OECD-style country (political) risk classes: 0 = lowest risk, 7 = highest.
POLITICAL_RISK_CLASSES: range = range(0, 8)
