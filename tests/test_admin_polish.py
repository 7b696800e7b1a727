"""Admin presentation: plurals, money in major units with the currency, times with seconds and zone."""

import re
from datetime import UTC, datetime

import pytest
from django.apps import apps
from django.contrib.admin.utils import display_for_value
from django.utils import formats

from evpay.admin import money_text


def test_every_plural_is_english():
    wrong = [
        f"{model._meta.label}: {model._meta.verbose_name_plural}"
        for model in apps.get_models()
        if re.search(r"[^aeiou]ys$", str(model._meta.verbose_name_plural))
    ]
    assert not wrong, wrong


@pytest.mark.parametrize(
    "minor,currency,shown", [(7500, "EUR", "75.00 EUR"), (7500, "JPY", "7500 JPY"), (1234, "KWD", "1.234 KWD")]
)
def test_money_in_major_units_with_its_currency(minor, currency, shown):
    assert money_text(minor, currency) == shown
    assert money_text(None, currency) == "-"


def test_times_show_seconds_and_zone():
    when = datetime(2026, 11, 23, 20, 25, 7, tzinfo=UTC)
    assert display_for_value(when, "-") == "2026-11-23 20:25:07 UTC"
    assert formats.date_format(when, "DATETIME_FORMAT") == "2026-11-23 20:25:07 UTC"
