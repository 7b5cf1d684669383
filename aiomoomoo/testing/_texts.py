"""The texts of the simulator's failure replies, in OpenD's two languages where they are known.

OpenD words a refusal for exceeding a quota with one template per language (its ``Lang``
setting), naming the API and its limit; users quote it for snapshots, capital flow, K-lines,
option chains and financials, e.g. ``Get Market Snapshot is too frequent, request failed, no
more than 60 times every 30 seconds.`` and ``获取市场快照频率太高，请求失败，每30秒最多60次。``. An
unknown code is ``unknown stock`` / ``未知股票``. Two things are not public and are guessed here:
the name OpenD gives the short-interest API (3249) in these templates, and the errCode of a
refusal.
"""

# OpenD's Chinese texts use full-width punctuation, so they must here too.
# ruff: noqa: RUF001, RUF002

from __future__ import annotations

from typing import Final, Literal

from ._stats import Quota

__all__ = ["LANGS", "Lang", "check_lang", "not_logged_in", "rate_limited", "unknown_stock"]

Lang = Literal["en", "zh"]
"""The language of OpenD's texts in the simulator's failure replies (``OpenDSimulator(lang=...)``),
as OpenD's own ``Lang`` setting: ``"en"`` or ``"zh"``."""
#: The languages of OpenD's texts the simulator speaks.
LANGS: Final[tuple[Lang, ...]] = ("en", "zh")

# Guesses, in the style of the API names OpenD's refusals are known to use.
_API_NAME: Final[dict[str, str]] = {"en": "Get Short Interest", "zh": "获取卖空数据"}


def check_lang(lang: object) -> Lang:
    """``lang`` if it is one of `LANGS`; ValueError otherwise."""
    if lang not in LANGS:
        raise ValueError(f"lang must be 'en' or 'zh' (OpenD's English or Chinese), got {lang!r}")
    return lang


def _seconds(period: float) -> str:
    # "30", not "30.0"; "0.5" stays as it is.
    return str(int(period)) if float(period).is_integer() else repr(float(period))


def rate_limited(lang: Lang, quota: Quota) -> str:
    """OpenD's refusal of a request over ``quota``."""
    count, seconds = quota.max_requests, _seconds(quota.period)
    if lang == "zh":
        return f"{_API_NAME['zh']}频率太高，请求失败，每{seconds}秒最多{count}次。"
    return (
        f"{_API_NAME['en']} is too frequent, request failed, "
        f"no more than {count} times every {seconds} seconds."
    )


def unknown_stock(lang: Lang) -> str:
    """OpenD's reply to a code it does not know."""
    return "未知股票" if lang == "zh" else "unknown stock"


def not_logged_in(lang: Lang) -> str:
    """The refusal of a quote request while OpenD is not logged in (a guess at the wording)."""
    return "行情服务器未登录" if lang == "zh" else "quote server is not logged in"
