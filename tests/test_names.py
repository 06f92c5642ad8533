"""The names module and the README's table stay in step."""

from __future__ import annotations

from pathlib import Path

from otelstream import names

README = (Path(__file__).parent.parent / "README.md").read_text()
# Values of these constants are enum-like values, documented in the prose of their attribute.
_VALUES = ("OP_", "TOKEN_TYPE_", "OUTCOME_", "WORK_", "STALL_REASON_")


def _public_names() -> dict[str, str]:
    return {
        key: value
        for key, value in vars(names).items()
        if key.isupper() and isinstance(value, str) and not key.startswith(_VALUES)
    }


def test_every_name_is_in_the_readme_table() -> None:
    """Each span, attribute, event and metric name has a row in the README's table."""
    missing = [value for value in _public_names().values() if f"| `{value}` |" not in README]
    assert missing == []


def test_every_enum_value_is_documented() -> None:
    """Operation names, token types and outcomes appear in the README."""
    values = [
        value for key, value in vars(names).items() if key.isupper() and key.startswith(_VALUES)
    ]
    assert [v for v in values if f"`{v}`" not in README] == []


def test_names_are_unique() -> None:
    """No two constants share a name, so nothing is emitted under two meanings."""
    values = list(_public_names().values())
    assert len(values) == len(set(values))
