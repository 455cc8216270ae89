"""Message components as Discord checks and keeps them, for the Discord stand-in.

A plain message holds at most five action rows, each of up to five buttons or one select menu. A
message flagged IS_COMPONENTS_V2 holds layout components too (text displays, sections,
containers...), up to 40 in all, and no content or embeds. Every ``custom_id`` is 1-100
characters and unique in its message. Discord numbers the components it stores (``id``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, Final

__all__ = ["ComponentError", "checked", "find_component", "picked_values"]

JsonObject = dict[str, Any]
Where = tuple[str | int, ...]

ACTION_ROW: Final = 1
BUTTON: Final = 2
STRING_SELECT: Final = 3
_TEXT_DISPLAY: Final = 10
_SECTION: Final = 9
_CONTAINER: Final = 17
# User, role, mentionable and channel selects: Discord fills their options.
_AUTO_SELECTS: Final = frozenset({5, 6, 7, 8})
_SELECTS: Final = frozenset({STRING_SELECT}) | _AUTO_SELECTS
_V2_TOP: Final = frozenset({ACTION_ROW, _SECTION, _TEXT_DISPLAY, 12, 13, 14, _CONTAINER})
_BUTTON_STYLES: Final = frozenset({1, 2, 3, 4, 5, 6})
_LINK: Final = 5
_PREMIUM: Final = 6
_MAX_ROWS: Final = 5
_MAX_V2: Final = 40


class ComponentError(Exception):
    """A form error in a message's ``components``: where (below ``components``), Discord's code
    and its message."""

    def __init__(self, where: Where, code: str, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.code = code
        self.message = message


def checked(components: Any, *, v2: bool) -> list[JsonObject]:
    """The components as Discord stores them (numbered), or a ComponentError saying why not."""
    if not isinstance(components, list):
        raise ComponentError((), "LIST_TYPE_CONVERT", "Must be a list.")
    if not v2 and len(components) > _MAX_ROWS:
        raise ComponentError((), "BASE_TYPE_MAX_LENGTH", f"Must be {_MAX_ROWS} or fewer in length.")
    stored = copy.deepcopy(components)
    allowed = _V2_TOP if v2 else frozenset({ACTION_ROW})
    for index, component in enumerate(stored):
        _check(component, (index,), allowed)
    found = list(_walk(stored))
    if v2 and len(found) > _MAX_V2:
        raise ComponentError(
            (), "COMPONENTS_MAX_EXCEEDED", f"Must be {_MAX_V2} or fewer components in total."
        )
    seen: set[str] = set()
    for where, component in _walk_where(stored, ()):
        custom_id = component.get("custom_id")
        if custom_id is None:
            continue
        if custom_id in seen:
            raise ComponentError(
                (*where, "custom_id"),
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            )
        seen.add(custom_id)
    taken = {c["id"] for c in found if isinstance(c.get("id"), int)}
    number = 0
    for component in found:
        if "id" not in component:
            number += 1
            while number in taken:
                number += 1
            component["id"] = number
    return stored


def find_component(components: list[JsonObject], custom_id: str) -> JsonObject | None:
    """The component with this ``custom_id`` anywhere in a stored message's components."""
    return next((c for c in _walk(components) if c.get("custom_id") == custom_id), None)


def picked_values(select: JsonObject, values: list[str]) -> list[str]:
    """The values a person can pick in this select menu, or ValueError (Discord's client offers
    no other choice)."""
    least, most = select.get("min_values", 1), select.get("max_values", 1)
    if not least <= len(values) <= most:
        raise ValueError(f"select {select['custom_id']!r} takes {least}..{most} values")
    if select["type"] == STRING_SELECT:
        offered = {option["value"] for option in select["options"]}
        unknown = [value for value in values if value not in offered]
        if unknown:
            raise ValueError(f"select {select['custom_id']!r} offers no {unknown}")
    return list(values)


def _walk(components: list[JsonObject]) -> Iterator[JsonObject]:
    for _, component in _walk_where(components, ()):
        yield component


def _walk_where(components: list[JsonObject], where: Where) -> Iterator[tuple[Where, JsonObject]]:
    for index, component in enumerate(components):
        yield (*where, index), component
        inner = component.get("components")
        if isinstance(inner, list):
            yield from _walk_where(inner, (*where, index, "components"))
        accessory = component.get("accessory")
        if isinstance(accessory, dict):
            yield (*where, index, "accessory"), accessory


def _check(component: Any, where: Where, allowed: frozenset[int]) -> None:
    if not isinstance(component, dict):
        raise ComponentError(where, "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
    kind = component.get("type")
    if kind not in allowed:
        choices = ", ".join(str(k) for k in sorted(allowed))
        raise ComponentError(
            (*where, "type"),
            "UNION_TYPE_CHOICES",
            f'Value of field "type" must be one of ({choices}).',
        )
    if kind == ACTION_ROW:
        _check_row(component, where)
    elif kind == _TEXT_DISPLAY:
        _length(component, "content", where, 1, 4000, required=True)
    elif kind == _SECTION:
        texts = component.get("components")
        if not isinstance(texts, list) or not 1 <= len(texts) <= 3:
            raise ComponentError(
                (*where, "components"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 3 in length."
            )
        for index, text in enumerate(texts):
            _check(text, (*where, "components", index), frozenset({_TEXT_DISPLAY}))
        accessory = component.get("accessory")
        if not isinstance(accessory, dict):
            raise ComponentError(
                (*where, "accessory"), "BASE_TYPE_REQUIRED", "This field is required"
            )
        if accessory.get("type") == BUTTON:
            _check_button(accessory, (*where, "accessory"))
    elif kind == _CONTAINER:
        inner = component.get("components")
        if not isinstance(inner, list) or not inner:
            raise ComponentError(
                (*where, "components"), "BASE_TYPE_MIN_LENGTH", "Must be 1 or more in length."
            )
        for index, child in enumerate(inner):
            _check(child, (*where, "components", index), _V2_TOP - {_CONTAINER})


def _check_row(row: JsonObject, where: Where) -> None:
    items = row.get("components")
    if not isinstance(items, list) or not 1 <= len(items) <= 5:
        raise ComponentError(
            (*where, "components"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
        )
    for index, item in enumerate(items):
        _check(item, (*where, "components", index), frozenset({BUTTON}) | _SELECTS)
        if item["type"] in _SELECTS and len(items) > 1:
            raise ComponentError(
                (*where, "components", index),
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "The specified component exceeds the maximum width",
            )
        if item["type"] == BUTTON:
            _check_button(item, (*where, "components", index))
        else:
            _check_select(item, (*where, "components", index))


def _check_button(button: JsonObject, where: Where) -> None:
    style = button.get("style")
    if style not in _BUTTON_STYLES:
        raise ComponentError(
            (*where, "style"), "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3, 4, 5, 6}."
        )
    if style == _LINK:
        _length(button, "url", where, 1, 512, required=True)
        if not str(button["url"]).startswith(("http://", "https://", "discord://")):
            raise ComponentError((*where, "url"), "URL_TYPE_INVALID_URL", "Not a well formed URL.")
        if "custom_id" in button:
            raise ComponentError(
                (*where, "custom_id"),
                "BUTTON_COMPONENT_LINK_CUSTOM_ID",
                "A link button cannot have a custom id",
            )
    elif style != _PREMIUM:
        _custom_id(button, where)
        if "url" in button:
            raise ComponentError(
                (*where, "url"), "BUTTON_COMPONENT_URL_NOT_ALLOWED", "Only link buttons have a url"
            )
    if style != _PREMIUM:
        _length(button, "label", where, 0, 80)
        if not button.get("label") and not button.get("emoji"):
            raise ComponentError(
                (*where, "label"),
                "BUTTON_COMPONENT_LABEL_OR_EMOJI_REQUIRED",
                "A label or an emoji is required",
            )


def _check_select(select: JsonObject, where: Where) -> None:
    _custom_id(select, where)
    _length(select, "placeholder", where, 0, 150)
    least, most = select.get("min_values", 1), select.get("max_values", 1)
    if not isinstance(least, int) or not 0 <= least <= 25:
        raise ComponentError(
            (*where, "min_values"), "NUMBER_TYPE_MAX", "int value should be between 0 and 25."
        )
    if not isinstance(most, int) or not 1 <= most <= 25 or most < least:
        raise ComponentError(
            (*where, "max_values"),
            "NUMBER_TYPE_MAX",
            "int value should be between 1 and 25, and not below min_values.",
        )
    if select["type"] != STRING_SELECT:
        return
    options = select.get("options")
    if not isinstance(options, list) or not 1 <= len(options) <= 25:
        raise ComponentError(
            (*where, "options"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 25 in length."
        )
    values: set[str] = set()
    for index, option in enumerate(options):
        at = (*where, "options", index)
        if not isinstance(option, dict):
            raise ComponentError(at, "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
        _length(option, "label", at, 1, 100, required=True)
        _length(option, "value", at, 1, 100, required=True)
        _length(option, "description", at, 0, 100)
        if option["value"] in values:
            raise ComponentError(
                (*at, "value"),
                "SELECT_COMPONENT_OPTION_VALUE_DUPLICATED",
                "Select component option values must be unique",
            )
        values.add(option["value"])
    if most > len(options):
        raise ComponentError(
            (*where, "max_values"),
            "BASE_TYPE_MAX",
            f"Must be less than or equal to {len(options)}.",
        )
    if sum(1 for option in options if option.get("default")) > most:
        raise ComponentError(
            (*where, "options"),
            "SELECT_COMPONENT_TOO_MANY_DEFAULT_VALUES",
            "More default values than max_values",
        )


def _custom_id(component: JsonObject, where: Where) -> None:
    _length(component, "custom_id", where, 1, 100, required=True)


def _length(
    component: JsonObject, name: str, where: Where, least: int, most: int, *, required: bool = False
) -> None:
    value = component.get(name)
    if value is None:
        if required:
            raise ComponentError((*where, name), "BASE_TYPE_REQUIRED", "This field is required")
        return
    if not isinstance(value, str):
        raise ComponentError((*where, name), "BASE_TYPE_STRING", "Must be a string.")
    if not least <= len(value) <= most:
        raise ComponentError(
            (*where, name),
            "BASE_TYPE_BAD_LENGTH",
            f"Must be between {least} and {most} in length.",
        )
