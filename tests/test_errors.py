"""Which of OpenD's failure texts are rate limits, and the budget read from them."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest

from aiomoomoo import FetchManyError, RateLimitError, ServerError, UnknownSecurityError
from aiomoomoo._errors import server_error


def classify(ret_msg: str) -> ServerError:
    return server_error(ret_msg, ret_type=-1, err_code=None, proto_id=3249)


@pytest.mark.parametrize(
    ("ret_msg", "quota"),
    [
        # The English template, as users quote it for other APIs.
        (
            "Get snapshot is too frequent, request failed, no more than 60 times every 30 seconds.",
            (60, 30.0),
        ),
        (
            "Get capital flow is too frequent, request failed, "
            "no more than 30 times every 30 seconds",
            (30, 30.0),
        ),
        # Whitespace, case, a full-width comma, singular units, a fractional period.
        ("Kline  is TOO frequent ,request failed,  no more than 1 time every 1 second.", (1, 1.0)),
        ("X is too frequent，request failed，no more than 5 times every 0.5 seconds。", (5, 0.5)),  # noqa: RUF001
        # The Chinese template, simplified and traditional.
        ("获取快照频率太高，请求失败，每30秒最多60次。", (60, 30.0)),  # noqa: RUF001
        ("获取资金流向频率太高, 请求失败, 每 30 秒最多 30 次", (30, 30.0)),
        ("獲取快照頻率太高，請求失敗，每3秒最多5次。", (5, 3.0)),  # noqa: RUF001
        # The template without its numbers: a rate limit, budget unknown.
        ("Get short interest is too frequent, request failed", None),
        ("频率太高，请求失败", None),  # noqa: RUF001
        # Numbers no limiter can take are not a budget.
        ("X is too frequent, request failed, no more than 0 times every 30 seconds.", None),
        ("X is too frequent, request failed, no more than 5 times every 0 seconds.", None),
    ],
)
def test_opends_rate_limit_templates_are_rate_limits_with_their_budget(
    ret_msg: str, quota: tuple[int, float] | None
) -> None:
    error = classify(ret_msg)
    assert type(error) is RateLimitError
    assert error.quota == quota
    assert error.ret_msg == ret_msg


@pytest.mark.parametrize(
    "ret_msg",
    [
        "invalid kline frequency parameter",
        "frequency",
        "频率参数错误",
        "K线频率太高",  # not followed by "请求失败": no template
        "request too frequent",
        "历史K线额度不足，当前已用100，剩余0",  # noqa: RUF001
        "订阅额度不足",
        "rate limit exceeded: at most 30 requests in any 30 seconds",  # never OpenD's wording
        "",
    ],
)
def test_other_texts_are_no_rate_limit(ret_msg: str) -> None:
    assert type(classify(ret_msg)) is ServerError


@pytest.mark.parametrize("ret_msg", ["unknown stock US.NOPE", "未知股票", "Stock not exist"])
def test_unknown_securities(ret_msg: str) -> None:
    assert type(classify(ret_msg)) is UnknownSecurityError


def test_a_rate_limit_keeps_its_budget_across_pickling() -> None:
    error = RateLimitError("x", ret_type=-1, err_code=None, proto_id=3249, quota=(5, 3.0))
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.quota, copy.err_code, str(copy)) == (
        RateLimitError,
        (5, 3.0),
        None,
        str(error),
    )
    assert RateLimitError("x", ret_type=-1, err_code=3, proto_id=1).quota is None


def test_server_errors_and_fetch_many_errors_survive_pickling() -> None:
    refusal = "X is too frequent, request failed, no more than 5 times every 3 seconds."
    error = server_error(refusal, ret_type=-1, err_code=3, proto_id=3249)
    assert isinstance(error, RateLimitError)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is RateLimitError
    assert (copy.ret_msg, copy.ret_type, copy.err_code, copy.proto_id, copy.quota) == (
        refusal,
        -1,
        3,
        3249,
        (5, 3.0),
    )
    assert str(copy) == str(error)
    plain = pickle.loads(pickle.dumps(ServerError("x", ret_type=-1, err_code=None, proto_id=1)))
    assert plain.err_code is None

    many = FetchManyError(pd.DataFrame({"code": ["US.AAPL"]}), {"US.NOPE": error})
    many_copy = pickle.loads(pickle.dumps(many))
    assert str(many_copy) == str(many)
    assert list(many_copy.failures) == ["US.NOPE"]
    assert many_copy.frame.equals(many.frame)
