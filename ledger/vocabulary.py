"""The CRM's words: channels, directions, purposes, and the ISO codes the contract checks."""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


class Channel(StrEnum):
    """Where a touchpoint happened."""

    PHONE = "phone"
    EMAIL = "email"
    SMS = "sms"
    CHAT = "chat"
    STORE = "store"
    WEB = "web"
    SOCIAL = "social"
    POST = "post"


class Direction(StrEnum):
    """Who started the contact: the customer (inbound) or the company (outbound)."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Purpose(StrEnum):
    """Why the company is in touch; marketing is what consent and caps are about."""

    SERVICE = "service"
    TRANSACTIONAL = "transactional"
    MARKETING = "marketing"


# ISO 4217 active currency codes (2024 list, funds codes and precious metals left out).
ISO_4217 = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
    BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
    KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
    MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
    SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
    UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    """.split()
)

# ISO 3166-1 alpha-2 country codes.
ISO_3166 = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
    BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW
    GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY
    KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV
    MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG
    TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM
    ZW
    """.split()
)

LOCALE_PATTERN = r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$"
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
"""Published as JSON Schema ``pattern``s too; checked here with ``fullmatch`` (Python's ``$``
also matches before a final newline, ECMA-262's does not)."""
_LOCALE = re.compile(LOCALE_PATTERN, re.ASCII)
_E164 = re.compile(E164_PATTERN, re.ASCII)

TIME_ZONES = frozenset(available_timezones())
"""IANA zone names the ledger accepts (the installed tz database's list, published as the
schema's ``enum``); a path that ZoneInfo would also open (``posix/...``) is not a name."""


def check_currency(code: str) -> str:
    if code not in ISO_4217:
        raise ValueError(f"{code!r} is not an ISO 4217 currency code (e.g. GBP, EUR, TRY)")
    return code


def check_country(code: str) -> str:
    if code not in ISO_3166:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code (e.g. GB, TR)")
    return code


@lru_cache(maxsize=1024)
def time_zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``; ``ValueError`` when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Istanbul)") from exc


def check_time_zone(name: str) -> str:
    if name not in TIME_ZONES:
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Istanbul)")
    time_zone(name)
    return name


def check_locale(tag: str) -> str:
    if not _LOCALE.fullmatch(tag):
        raise ValueError(f"{tag!r} is not a BCP 47 language tag (e.g. tr-TR, en-GB)")
    return tag


def check_phone(number: str) -> str:
    if not _E164.fullmatch(number):
        raise ValueError(f"{number!r} is not an E.164 phone number (e.g. +905321234567)")
    return number
