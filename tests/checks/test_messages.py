"""Check messages print as the ``dockerflow`` package's do, so ported logs and assertions hold."""

from __future__ import annotations

import dockerflow.checks as theirs
import pytest

from dockerflow_wsgi import checks as ours

CASES = [
    ("Error", {"msg": "database down", "id": "acme.health.E001"}),
    ("Warning", {"msg": "slow", "hint": "add an index", "id": "acme.health.W001"}),
    ("Info", {"msg": "no id at all"}),
    ("Critical", {"msg": "gone", "obj": "queue:emails", "id": "acme.health.C001"}),
    ("Debug", {"msg": "detail", "hint": "", "obj": 42}),
]


@pytest.mark.parametrize(("kind", "fields"), CASES)
def test_str_and_repr_are_the_dockerflow_packages(kind, fields):
    mine = getattr(ours, kind)(**fields)
    reference = getattr(theirs, kind)(**fields)

    assert str(mine) == str(reference)
    assert repr(mine) == repr(reference)


def test_the_documented_forms():
    message = ours.Error("text", id="acme.E001")

    assert str(message) == "?: (acme.E001) text"
    assert repr(message) == "<Error: level=40, msg='text', hint=None, obj=None, id='acme.E001'>"
    assert str(ours.Warning("slow", hint="index it", obj="db")) == "db: slow\n\tHINT: index it"
