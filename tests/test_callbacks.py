"""Every CallbackData fits Telegram's 64 bytes and refuses forged values."""

from __future__ import annotations

import inspect

import pytest
from aiogram.filters.callback_data import CallbackData

from bot import callbacks


def all_classes() -> list[type[CallbackData]]:
    return [
        obj
        for _, obj in inspect.getmembers(callbacks, inspect.isclass)
        if issubclass(obj, CallbackData) and obj is not CallbackData
    ]


def biggest(cls: type[CallbackData]) -> CallbackData:
    values = {}
    for name, field in cls.model_fields.items():
        annotation = field.annotation
        options = getattr(annotation, "__args__", (annotation,))
        kind = next(o for o in options if o is not type(None))
        if isinstance(kind, type) and issubclass(kind, str) and hasattr(kind, "__members__"):
            values[name] = max(kind, key=lambda m: len(m.value))  # type: ignore[arg-type]
        elif kind is int:  # the largest the field allows
            values[name] = next(m.le for m in field.metadata if getattr(m, "le", None))
        elif kind is bool:
            values[name] = True
        else:
            values[name] = "x" * 20
    return cls(**values)


def test_prefixes_are_unique() -> None:
    prefixes = [cls.__prefix__ for cls in all_classes()]
    assert len(prefixes) == len(set(prefixes))


@pytest.mark.parametrize("cls", all_classes(), ids=lambda c: c.__name__)
def test_fits_64_bytes(cls: type[CallbackData]) -> None:
    assert len(biggest(cls).pack().encode()) <= 64


def test_forged_values_are_refused() -> None:
    with pytest.raises(ValueError):
        callbacks.ConsentCb.unpack("cs:zz")
    with pytest.raises(ValueError):
        callbacks.RegionPickCb.unpack("rr:abc")


def int_fields(cls: type[CallbackData]) -> list[str]:
    return [name for name, field in cls.model_fields.items() if field.annotation is int]


@pytest.mark.parametrize("cls", all_classes(), ids=lambda c: c.__name__)
def test_every_number_out_of_range_is_refused(cls: type[CallbackData]) -> None:
    """A forged id past what a table's INTEGER column holds never reaches a query."""
    for name in int_fields(cls):
        packed = biggest(cls).pack().split(":")
        position = list(cls.model_fields).index(name) + 1
        for forged in (2**63, 2**31, -1):
            packed[position] = str(forged)
            with pytest.raises(ValueError):
                cls.unpack(":".join(packed))
