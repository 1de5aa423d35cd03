"""SEC Form 4 parser and the net-insider-buying aggregate, on filing fixtures."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest

from algobotd.altdata.form4 import Form4Error, InsiderBook, parse_form4

FIX = Path(__file__).parent / "fixtures"


def test_ceo_sale_under_10b5_1_plan() -> None:
    rows = parse_form4((FIX / "form4_ceo_sale_10b51.xml").read_text())
    assert [r.code for r in rows] == ["F", "S"]
    f, s = rows
    assert s.symbol == "AAPL" and s.owner == "COOK TIMOTHY D" and s.role == "officer:Chief Executive Officer"
    assert s.shares == 120_000 and s.price == pytest.approx(168.25) and not s.acquired and s.direct
    assert s.plan_10b5_1 and s.signed_value == pytest.approx(-120_000 * 168.25)
    assert f.shares == 105_000 and f.signed_value == 0.0  # tax withholding is not a view on the stock


def test_director_purchase_inside_sgml_submission() -> None:
    (row,) = parse_form4((FIX / "form4_director_buy.txt").read_bytes())
    assert row.symbol == "JPM" and row.role == "director" and row.code == "P"
    assert row.acquired and not row.direct and row.signed_value == pytest.approx(5000 * 195.10)


def test_amendment_with_grant_exercise_and_sale() -> None:
    rows = parse_form4((FIX / "form4a_grant_exercise.xml").read_text())
    assert [r.code for r in rows] == ["A", "M", "S"]  # the derivative table is not share ownership
    assert all(r.amendment and r.symbol == "MSFT" for r in rows)
    assert math.isnan(rows[0].price)  # a footnote instead of a price
    assert sum(r.signed_value for r in rows) == pytest.approx(-2000 * 406.50)


@pytest.mark.parametrize("doc", ["form3_not_form4.xml", "garbage"])
def test_not_a_form4_is_rejected(doc: str) -> None:
    text = (FIX / doc).read_text() if doc.endswith(".xml") else "<html>not a filing"
    with pytest.raises(Form4Error):
        parse_form4(text)


def test_insider_book_net_buying() -> None:
    book = InsiderBook(window_days=90)
    buy = parse_form4((FIX / "form4_director_buy.txt").read_text())
    assert book.add(buy) == 1 and book.add(buy) == 0  # a re-filed identical row counts once
    book.add(parse_form4((FIX / "form4_ceo_sale_10b51.xml").read_text()))
    jpm = book.features("JPM", dt.date(2024, 5, 31))
    assert jpm["net_value"] == pytest.approx(975_500.0) and jpm["buyers"] == 1 and jpm["net_insiders"] == 1
    aapl = book.features("AAPL", dt.date(2024, 4, 30))
    assert aapl["net_value"] < 0 and aapl["sellers"] == 0  # a 10b5-1 plan sale is not counted as a seller
    assert book.features("JPM", dt.date(2024, 12, 31))["net_value"] == 0.0  # out of the window
