"""The programme's catalog as data: centers, disease groups, document types and regions.

Read from one TOML file (``bot/catalog.toml``): adding a center is an edit of that file, not code.
Frozen pydantic models describe the file and check it (an error names the entry, as the file
shows it); they build the frozen dataclasses the bot works with. ``python -m bot.catalog`` writes
their JSON Schema, ``bot/catalog.schema.json``, for people editing the file.
"""

from __future__ import annotations

import functools
import json
import re
import tomllib
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, NamedTuple, Self, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import ErrorDetails, PydanticCustomError

__all__ = [
    "Catalog",
    "CatalogError",
    "CatalogFile",
    "Center",
    "DiseaseGroup",
    "DocumentType",
    "LocalizedName",
    "Region",
    "TimeZoneChoice",
    "default_catalog_path",
    "json_schema",
    "load_catalog",
    "normalize_text",
    "schema_path",
    "utc_offset_label",
]


class CatalogError(Exception):
    """The catalog file is unusable; ``str(error)`` is one line naming the broken entry."""


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalizedName:
    ru: str
    en: str

    def get(self, locale: str) -> str:
        """English for an ``en`` locale (``en``, ``en-US``), Russian for anything else."""
        return self.en if _is_english(locale) else self.ru


@dataclass(frozen=True, slots=True)
class DocumentType:
    code: str
    name: LocalizedName
    short_name: LocalizedName
    # Lowercase words/stems that recognise the type in a caption (see document_type_from_text).
    keywords: tuple[str, ...]
    # Counted only when no ordinary keyword of any type is found ("заключение МРТ" is an MRI).
    weak_keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DiseaseGroup:
    code: str
    name: LocalizedName
    aliases: tuple[str, ...] = ()
    # Documents this group requires on top of the center's own required list.
    required_documents: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Center:
    code: str
    short_name: LocalizedName
    full_name: LocalizedName
    time_zone: str
    staff_chat_id: int
    disease_groups: tuple[DiseaseGroup, ...]
    required_documents: tuple[str, ...]
    optional_documents: tuple[str, ...]
    aliases: tuple[str, ...] = ()

    def disease_group(self, code: str) -> DiseaseGroup | None:
        return next((group for group in self.disease_groups if group.code == code), None)

    @property
    def accepted_documents(self) -> tuple[str, ...]:
        """Every document type the center takes, required ones first."""
        return self.required_documents + self.optional_documents

    def required_documents_for(self, group: DiseaseGroup | str | None) -> tuple[str, ...]:
        """The center's required documents plus those the disease group adds."""
        if isinstance(group, str):
            group = self.disease_group(group)
        if group is None:
            return self.required_documents
        extra = tuple(c for c in group.required_documents if c not in self.required_documents)
        return self.required_documents + extra


@dataclass(frozen=True, slots=True)
class TimeZoneChoice:
    tz: str
    label: LocalizedName


@dataclass(frozen=True, slots=True)
class Region:
    code: int
    name: LocalizedName
    time_zones: tuple[TimeZoneChoice, ...]
    aliases: tuple[str, ...] = ()
    # Large cities: found by search_regions ("Казань"), never by match_region.
    cities: tuple[str, ...] = ()

    @property
    def default_time_zone(self) -> str:
        return self.time_zones[0].tz


@dataclass(frozen=True, slots=True)
class Catalog:
    centers: tuple[Center, ...]
    document_types: tuple[DocumentType, ...]
    regions: tuple[Region, ...]

    # Look-up indexes, built from the three tuples above (first entry wins on a clash;
    # load_catalog refuses clashes before a Catalog is built).
    _centers_by_code: dict[str, Center] = field(init=False, repr=False, compare=False)
    _center_keys: dict[str, Center] = field(init=False, repr=False, compare=False)
    _documents_by_code: dict[str, DocumentType] = field(init=False, repr=False, compare=False)
    _keywords: tuple[_Keyword, ...] = field(init=False, repr=False, compare=False)
    _weak_keywords: tuple[_Keyword, ...] = field(init=False, repr=False, compare=False)
    _regions_by_code: dict[int, Region] = field(init=False, repr=False, compare=False)
    _region_keys: dict[str, Region] = field(init=False, repr=False, compare=False)
    _region_search: tuple[tuple[Region, tuple[tuple[str, ...], ...]], ...] = field(
        init=False, repr=False, compare=False
    )
    #: search_regions' answers by (query, locale), the latest used kept: patients of one region
    #: type the same words
    _searched: Callable[[str, str], tuple[Region, ...]] = field(
        init=False, repr=False, compare=False
    )
    #: the regions sorted by their names, per locale
    _by_name: Callable[[str], tuple[Region, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        def put(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        put("_centers_by_code", _first_by(self.centers, lambda c: [c.code]))
        put("_center_keys", _first_by(self.centers, _center_keys))
        put("_documents_by_code", _first_by(self.document_types, lambda d: [d.code]))
        put("_keywords", _keyword_index(self.document_types, weak=False))
        put("_weak_keywords", _keyword_index(self.document_types, weak=True))
        put("_regions_by_code", _first_by(self.regions, lambda r: [r.code]))
        put("_region_keys", _first_by(self.regions, _region_match_keys))
        put("_region_search", tuple((r, _region_search_variants(r)) for r in self.regions))
        put("_searched", functools.lru_cache(maxsize=_SEARCHES_KEPT)(self._search_regions))
        put("_by_name", functools.lru_cache(maxsize=8)(self._regions_by_name))

    # --- look-ups by code -------------------------------------------------------------------

    def center(self, code: str) -> Center | None:
        return self._centers_by_code.get(code)

    def document_type(self, code: str) -> DocumentType | None:
        return self._documents_by_code.get(code)

    def region(self, code: int) -> Region | None:
        return self._regions_by_code.get(code)

    # --- tolerant matching of free text -----------------------------------------------------

    def match_region(self, text: str) -> Region | None:
        """The region whose name (or alias) is ``text`` up to case, ё/е, punctuation,
        abbreviations ("обл.", "респ.", "г.", "АО") and word order; a bare number is a region
        code. For spreadsheet cells, so nothing partial: see search_regions for that."""
        stripped = normalize_text(text)
        if stripped.isdigit():
            return self.region(int(stripped))
        tokens = _region_canonical(_tokens(text))
        if not tokens:
            return None
        return self._region_keys.get(" ".join(tokens)) or self._region_keys.get(
            _SORTED + " ".join(sorted(tokens))
        )

    def regions_by_name(self, locale: str) -> tuple[Region, ...]:
        """All regions in the order of their names in ``locale`` (the region list's pages)."""
        return self._by_name(locale)

    def _regions_by_name(self, locale: str) -> tuple[Region, ...]:
        return tuple(sorted(self.regions, key=lambda region: region.name.get(locale)))

    def search_regions(self, query: str, locale: str = "ru") -> list[Region]:
        """Regions whose ru or en name, alias or large city matches ``query``, best first.

        Ranks: exact name > the name starts with the query > every query word starts a word
        of the name > the same with Russian word endings ("москва" finds "Московская") > the
        query occurs anywhere in the name. Ties are sorted by the name in ``locale``.
        """
        return list(self._searched(query, locale))

    def _search_regions(self, query: str, locale: str) -> tuple[Region, ...]:
        stripped = normalize_text(query)
        if stripped.isdigit():
            found = self.region(int(stripped))
            return (found,) if found else ()
        words = tuple(t for t in _tokens(query) if t not in _REGION_NOISE)
        if not words:
            return ()
        exact = self.match_region(query)
        phrase = " ".join(words)
        ranked: list[tuple[int, str, Region]] = []
        for region, variants in self._region_search:
            rank = 0 if region is exact else min(_search_rank(words, phrase, v) for v in variants)
            if rank < _NO_MATCH:
                ranked.append((rank, normalize_text(region.name.get(locale)), region))
        ranked.sort(key=lambda item: (item[0], item[1], item[2].code))
        return tuple(region for _, _, region in ranked)

    def match_center(self, text: str) -> Center | None:
        """The center named by ``text``: its code, short or full name, or an alias."""
        key = _center_key(text)
        return self._center_keys.get(key) if key else None

    def match_disease_group(self, center: Center | str, text: str) -> DiseaseGroup | None:
        """The disease group of ``center`` named by ``text``: code, ru/en name or an alias."""
        found = self.center(center) if isinstance(center, str) else center
        if found is None:
            return None
        key = " ".join(_tokens(text))
        if not key:
            return None
        for group in found.disease_groups:
            if key in _disease_group_keys(group):
                return group
        return None

    def document_type_from_text(self, text: str) -> str | None:
        """The document type a caption names, or None when it names none or several.

        Keywords are found as whole words (stems of 4+ letters also match longer words);
        a keyword inside a longer one found at the same place is dropped ("узи плода" is not
        also "узи"); every remaining keyword must agree on one type, so a keyword listed under
        two types ("узи") is settled by another word ("малого таза") and conflicting ones
        ("выписка, ЭКГ") give None. Weak keywords are used only when no ordinary one is found.
        """
        tokens = _tokens(text)
        if not tokens:
            return None
        for keywords in (self._keywords, self._weak_keywords):
            spans = _keyword_spans(tokens, keywords)
            if spans:
                candidates = set.intersection(*spans)
                return candidates.pop() if len(candidates) == 1 else None
        return None


# ---------------------------------------------------------------------------------------------
# Text normalisation and matching helpers
# ---------------------------------------------------------------------------------------------


def normalize_text(s: str) -> str:
    """Casefold, ё→е, collapse whitespace, strip punctuation and symbols at both edges."""
    s = unicodedata.normalize("NFKC", s).casefold().replace("ё", "е")
    s = " ".join(s.split())
    start, end = 0, len(s)
    while start < end and _is_edge_junk(s[start]):
        start += 1
    while end > start and _is_edge_junk(s[end - 1]):
        end -= 1
    return s[start:end]


def utc_offset_label(tz: str, locale: str = "ru", at: datetime | None = None) -> str:
    """``UTC+8 (МСК+5)`` / ``UTC+8 (MSK+5)`` for ``tz`` at ``at`` (default: now)."""
    moment = at if at is not None else datetime.now(UTC)
    offset = moment.astimezone(ZoneInfo(tz)).utcoffset() or timedelta(0)
    moscow = moment.astimezone(ZoneInfo("Europe/Moscow")).utcoffset() or timedelta(0)
    msk = "MSK" if _is_english(locale) else "МСК"
    diff = offset - moscow
    return f"UTC{_format_offset(offset)} ({msk}{_format_offset(diff) if diff else ''})"


def _format_offset(delta: timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours}" + (f":{rest:02d}" if rest else "")


def _is_english(locale: str) -> bool:
    return re.split(r"[-_]", locale.strip(), maxsplit=1)[0].lower() == "en"


def _is_edge_junk(char: str) -> bool:
    return char.isspace() or unicodedata.category(char)[0] in "PS"


_WORD = re.compile(r"[^\W_]+")


def _tokens(text: str) -> tuple[str, ...]:
    """Words of ``text`` after normalize_text; any non-letter, non-digit separates words."""
    return tuple(_WORD.findall(normalize_text(text)))


_T = TypeVar("_T")
_K = TypeVar("_K")
_E = TypeVar("_E")


def _first_by(items: Iterable[_T], keys_of: Callable[[_T], Iterable[_K]]) -> dict[_K, _T]:
    index: dict[_K, _T] = {}
    for item in items:
        for key in keys_of(item):
            index.setdefault(key, item)
    return index


# --- document types ------------------------------------------------------------------------

# A keyword word this long or longer is a stem: it also matches longer words ("выписк" finds
# "выписки"); shorter ones must match a whole word ("кт" is not found in "контракт" or "ктг").
_STEM_MIN = 4


class _Keyword(NamedTuple):
    words: tuple[str, ...]
    code: str


def _keyword_index(document_types: Iterable[DocumentType], *, weak: bool) -> tuple[_Keyword, ...]:
    return tuple(
        _Keyword(_tokens(keyword), doc.code)
        for doc in document_types
        for keyword in (doc.weak_keywords if weak else doc.keywords)
        if _tokens(keyword)
    )


def _word_matches(keyword_word: str, word: str) -> bool:
    return word == keyword_word or (
        len(keyword_word) >= _STEM_MIN and word.startswith(keyword_word)
    )


def _keyword_spans(words: Sequence[str], keywords: Iterable[_Keyword]) -> list[set[str]]:
    """For each place in ``words`` where keywords are found and which no longer keyword
    found around it covers, the set of document types those keywords name."""
    spans: dict[tuple[int, int], set[str]] = {}
    for keyword in keywords:
        size = len(keyword.words)
        for start in range(len(words) - size + 1):
            window = words[start : start + size]
            if all(_word_matches(k, w) for k, w in zip(keyword.words, window, strict=True)):
                spans.setdefault((start, start + size), set()).add(keyword.code)
    return [
        codes
        for span, codes in spans.items()
        if not any(other != span and other[0] <= span[0] and span[1] <= other[1] for other in spans)
    ]


# --- regions ---------------------------------------------------------------------------------

# Words that add nothing to a region's identity ("г. Москва" is "Москва").
_REGION_NOISE = frozenset({"г", "гор", "город", "федерального", "значения", "of", "the", "city"})
# Official words and their abbreviations in spreadsheets, folded to one form for exact matching.
_REGION_ABBREVIATIONS: Mapping[str, tuple[str, ...]] = {
    "область": ("обл",),
    "республика": ("респ",),
    "кр": ("край",),
    "автономный": ("авт",),
    "автономная": ("авт",),
    "округ": ("окр",),
    "ао": ("авт", "окр"),
    "obl": ("oblast",),
    "region": ("oblast",),
    "kray": ("krai",),
    "territory": ("krai",),
    "rep": ("republic",),
    "aut": ("autonomous",),
    "district": ("okrug",),
    "ao": ("autonomous", "okrug"),
    "st": ("saint",),
}
_REPUBLIC_WORDS = frozenset({"республика", "респ", "republic", "rep"})
_SORTED = "~"  # prefix of the word-order-insensitive keys in Catalog._region_keys
_NO_MATCH = 99


def _region_canonical(words: Iterable[str]) -> tuple[str, ...]:
    folded: list[str] = []
    for word in words:
        if word not in _REGION_NOISE:
            folded.extend(_REGION_ABBREVIATIONS.get(word, (word,)))
    return tuple(folded)


def _name_variants(name: str) -> list[tuple[str, ...]]:
    """Word tuples a region name is known by: the whole name, without and inside its
    parentheses, each side of a spaced dash, and without the word "Республика"/"Republic"."""
    raws = [name]
    inside = re.findall(r"\(([^)]*)\)", name)
    if inside:
        raws.append(re.sub(r"\([^)]*\)", " ", name))
        raws.extend(inside)
    for raw in list(raws):
        parts = re.split(r"\s[\u2014\u2013-]\s", raw)  # em dash, en dash, hyphen
        if len(parts) > 1:
            raws.extend(parts)
    variants: list[tuple[str, ...]] = []
    for raw in raws:
        words = tuple(w for w in _tokens(raw) if w not in _REGION_NOISE)
        if not words:
            continue
        variants.append(words)
        if len(words) > 1 and words[0] in _REPUBLIC_WORDS:
            variants.append(words[1:])
        if len(words) > 1 and words[-1] in _REPUBLIC_WORDS:
            variants.append(words[:-1])
    return list(dict.fromkeys(variants))


def _region_names(region: Region) -> tuple[str, ...]:
    return (region.name.ru, region.name.en, *region.aliases)


def _keys_of_name(name: str) -> list[str]:
    keys: list[str] = []
    for variant in _name_variants(name):
        words = _region_canonical(variant)
        keys += [" ".join(words), _SORTED + " ".join(sorted(words))]
    return list(dict.fromkeys(keys))


def _region_match_keys(region: Region) -> list[str]:
    return [key for name in _region_names(region) for key in _keys_of_name(name)]


def _region_search_variants(region: Region) -> tuple[tuple[str, ...], ...]:
    names = (*_region_names(region), *region.cities)
    return tuple(dict.fromkeys(v for name in names for v in _name_variants(name)))


def _same_stem(query_word: str, word: str) -> bool:
    """Russian endings differ between a city-like noun and the region's adjective:
    "москва"/"московская", "самара"/"самарская", "калуга"/"калужская"."""
    if len(query_word) < _STEM_MIN:
        return False
    common = 0
    for a, b in zip(query_word, word, strict=False):
        if a != b:
            break
        common += 1
    return common >= max(_STEM_MIN, len(query_word) - 2)


#: How many distinct region searches a catalog remembers.
_SEARCHES_KEPT = 1024


def _search_rank(words: tuple[str, ...], phrase: str, variant: tuple[str, ...]) -> int:
    text = " ".join(variant)
    if text.startswith(phrase):
        return 1
    if all(any(v.startswith(w) for v in variant) for w in words):
        return 2
    if all(any(v.startswith(w) or _same_stem(w, v) for v in variant) for w in words):
        return 3
    if len(phrase) >= 3 and phrase in text:
        return 4
    return _NO_MATCH


# --- centers and disease groups ----------------------------------------------------------------

# Parts of a center's official name that spreadsheets often leave out.
_CENTER_NOISE = frozenset({"фгбу", "минздрава", "россии", "мз", "рф"})


def _center_canonical(words: Iterable[str]) -> tuple[str, ...]:
    # Initials ("А.Н.") are dropped too: "им. Бакулева" and "имени А.Н. Бакулева" are one center.
    return tuple(
        "им" if w == "имени" else w for w in words if len(w) > 1 and w not in _CENTER_NOISE
    )


def _center_names(center: Center) -> tuple[str, ...]:
    return (
        center.code,
        center.short_name.ru,
        center.short_name.en,
        center.full_name.ru,
        center.full_name.en,
        *center.aliases,
    )


def _center_key(name: str) -> str:
    return " ".join(_center_canonical(_tokens(name)))


def _center_keys(center: Center) -> list[str]:
    return [key for key in dict.fromkeys(map(_center_key, _center_names(center))) if key]


def _disease_group_names(group: DiseaseGroup) -> tuple[str, ...]:
    return (group.code, group.name.ru, group.name.en, *group.aliases)


def _group_key(name: str) -> str:
    return " ".join(_tokens(name))


def _disease_group_keys(group: DiseaseGroup) -> set[str]:
    return set(map(_group_key, _disease_group_names(group))) - {""}


# ---------------------------------------------------------------------------------------------
# The file: pydantic models of bot/catalog.toml (bot/catalog.schema.json is made from them)
# ---------------------------------------------------------------------------------------------


def default_catalog_path() -> Path:
    """The catalog shipped with the bot: ``bot/catalog.toml``."""
    return Path(__file__).with_name("catalog.toml")


def schema_path() -> Path:
    """The JSON Schema of the catalog file for editors: ``bot/catalog.schema.json``."""
    return Path(__file__).with_name("catalog.schema.json")


def _problem(text: str, where: str = "") -> PydanticCustomError:
    """A broken rule of the catalog; ``where`` names a part of the entry being validated."""
    return PydanticCustomError("catalog", "{text}", {"text": text, "where": where})


def _known_zone(tz: str) -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise _problem(
            f"unknown time zone {tz!r} (use an IANA name such as 'Europe/Moscow')"
        ) from None
    return tz


def _listed_once(codes: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
    repeated = next((code for i, code in enumerate(codes) if code in codes[:i]), None)
    if repeated is not None:
        kind = (info.field_name or "").removesuffix("_documents")
        raise _problem(f"{kind} document {repeated!r} is listed twice")
    return codes


_Text = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1)]
_Code = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, pattern=r"^[a-z][a-z0-9_]{0,31}$"),
    Field(
        description="Latin lowercase letters, digits and '_'; stored in the database: never change"
    ),
]
_Zone = Annotated[_Text, AfterValidator(_known_zone), Field(description="IANA time zone")]
_Documents = Annotated[
    tuple[_Text, ...],
    AfterValidator(_listed_once),
    Field(description="codes of [[document_types]]"),
]


class _Table(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class DocumentTypeTable(_Table):
    """[[document_types]]: a kind of document patients upload."""

    code: _Code
    name_ru: _Text
    name_en: _Text
    short_name_ru: _Text
    short_name_en: _Text
    keywords: tuple[_Text, ...]
    """Lowercase words or stems (4+ letters match longer words) that name the type in a caption."""
    weak_keywords: tuple[_Text, ...] = ()
    """Used only when a caption has no ordinary keyword of any type ("заключение МРТ" is an MRI)."""

    @field_validator("keywords", "weak_keywords")
    @classmethod
    def _normalized(cls, keywords: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        for keyword in keywords:
            if not _tokens(keyword):
                what = (info.field_name or "")[:-1].replace("_", " ")
                raise _problem(f"{what} {keyword!r} has no letters")
        return tuple(" ".join(_tokens(keyword)) for keyword in keywords)

    def build(self) -> DocumentType:
        name, short_name = _name(self, "name"), _name(self, "short_name")
        return DocumentType(self.code, name, short_name, self.keywords, self.weak_keywords)


class DiseaseGroupTable(_Table):
    """[[centers.disease_groups]]: a group of diseases the center selects patients by."""

    code: _Code
    name_ru: _Text
    name_en: _Text
    aliases: tuple[_Text, ...] = ()
    required_documents: _Documents = ()
    """Required for this group on top of the center's required_documents."""

    @property
    def names(self) -> tuple[str, ...]:
        return (self.code, self.name_ru, self.name_en, *self.aliases)

    def build(self) -> DiseaseGroup:
        return DiseaseGroup(self.code, _name(self, "name"), self.aliases, self.required_documents)


class CenterTable(_Table):
    """[[centers]]: a federal center; its disease groups follow it as [[centers.disease_groups]]."""

    code: _Code
    short_name_ru: _Text
    short_name_en: _Text
    full_name_ru: _Text
    full_name_en: _Text
    aliases: tuple[_Text, ...] = ()
    time_zone: _Zone
    staff_chat_id: Annotated[int, Strict()]
    """The id of the center's staff supergroup (-100…)."""
    required_documents: _Documents
    optional_documents: _Documents = ()
    disease_groups: Annotated[tuple[DiseaseGroupTable, ...], Field(min_length=1)]

    @property
    def names(self) -> tuple[str, ...]:
        names = (self.short_name_ru, self.short_name_en, self.full_name_ru, self.full_name_en)
        return (self.code, *names, *self.aliases)

    @model_validator(mode="after")
    def _documents_agree(self) -> Self:
        both = next((d for d in self.required_documents if d in self.optional_documents), None)
        if both is not None:
            raise _problem(f"document {both!r} is both required and optional")
        accepted = self.required_documents + self.optional_documents
        for index, group in enumerate(self.disease_groups):
            missing = next((d for d in group.required_documents if d not in accepted), None)
            if missing is not None:
                raise _problem(
                    f"required document {missing!r} is not among the center's "
                    "required_documents or optional_documents",
                    _entry_label("disease_groups", index, group),
                )
        groups = self.disease_groups
        _unique(groups, "disease_groups", "duplicate disease group code")
        _unique(groups, "disease_groups", "name or alias", lambda g: _keyed(g.names, _group_key))
        return self

    def build(self) -> Center:
        return Center(
            code=self.code,
            short_name=_name(self, "short_name"),
            full_name=_name(self, "full_name"),
            time_zone=self.time_zone,
            staff_chat_id=self.staff_chat_id,
            disease_groups=tuple(group.build() for group in self.disease_groups),
            required_documents=self.required_documents,
            optional_documents=self.optional_documents,
            aliases=self.aliases,
        )


class TimeZoneTable(_Table):
    """[[regions.time_zones]]: one of the zones a patient of the region chooses from."""

    tz: _Zone
    label_ru: _Text | SkipJsonSchema[None] = None
    """The choice as shown; needed when the region has several zones."""
    label_en: _Text | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _both_labels(self) -> Self:
        if (self.label_ru is None) != (self.label_en is None):
            raise _problem(f"missing field {'label_ru' if self.label_ru is None else 'label_en'!r}")
        return self


class RegionTable(_Table):
    """[[regions]]: a federal subject with its time zone (or zones to choose from)."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["time_zone"]}, {"required": ["time_zones"]}]}
    )

    code: Annotated[int, Strict(), Field(gt=0, description="the subject's number (tax code)")]
    name_ru: _Text
    name_en: _Text
    aliases: tuple[_Text, ...] = ()
    cities: tuple[_Text, ...] = ()
    """Large cities: found by the search ("Казань"), never by exact matching of a table cell."""
    time_zone: _Zone | SkipJsonSchema[None] = None
    time_zones: tuple[TimeZoneTable, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name_ru, self.name_en, *self.aliases)

    @model_validator(mode="after")
    def _one_zone_form(self) -> Self:
        if self.time_zone is not None and "time_zones" in self.model_fields_set:
            raise _problem("give either time_zone or [[regions.time_zones]], not both")
        if self.time_zone is None and not self.time_zones:
            raise _problem("has no time zone (add time_zone or [[regions.time_zones]])")
        for index, zone in enumerate(self.time_zones):
            where = _entry_label("time_zones", index, zone)
            if any(other.tz == zone.tz for other in self.time_zones[:index]):
                raise _problem(f"time zone {zone.tz!r} is listed twice", where)
            if len(self.time_zones) > 1 and zone.label_ru is None:
                raise _problem("needs label_ru and label_en: the region has several zones", where)
        return self

    def build(self) -> Region:
        name = _name(self, "name")
        zones = self.time_zones or (TimeZoneTable(tz=self.time_zone or ""),)
        choices = tuple(
            TimeZoneChoice(
                zone.tz,
                _name(zone, "label") if zone.label_ru else _default_zone_label(zone.tz, name),
            )
            for zone in zones
        )
        return Region(self.code, name, choices, self.aliases, self.cities)


class CatalogFile(_Table):
    """The catalog of the «Облако здоровья» bot (bot/catalog.toml)."""

    model_config = ConfigDict(title="Облако здоровья catalog")

    centers: Annotated[tuple[CenterTable, ...], Field(min_length=1)]
    document_types: Annotated[tuple[DocumentTypeTable, ...], Field(min_length=1)]
    regions: Annotated[tuple[RegionTable, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _references_and_names(self) -> Self:
        documents, centers, regions = self.document_types, self.centers, self.regions
        _unique(documents, "document_types", "duplicate document type code")
        _unique(centers, "centers", "duplicate center code")
        known = {document.code for document in documents}
        for index, center in enumerate(centers):
            for kind in ("required", "optional"):
                codes: tuple[str, ...] = getattr(center, f"{kind}_documents")
                unknown = next((code for code in codes if code not in known), None)
                if unknown is not None:
                    raise _problem(
                        f"{kind} document {unknown!r} is not a known document type",
                        _entry_label("centers", index, center),
                    )
        _unique(centers, "centers", "name or alias", lambda c: _keyed(c.names, _center_key))
        _unique(regions, "regions", "duplicate region code")
        _unique(regions, "regions", "name or alias", lambda r: _keyed(r.names, _keys_of_name))
        return self

    def build(self) -> Catalog:
        return Catalog(
            centers=tuple(center.build() for center in self.centers),
            document_types=tuple(document.build() for document in self.document_types),
            regions=tuple(region.build() for region in self.regions),
        )


def _keyed(
    names: Iterable[str], keys_of: Callable[[str], str | list[str]]
) -> list[tuple[str, str]]:
    """The match keys of an entry's names, each with the name it comes from."""
    pairs = ((keys_of(name), name) for name in names)
    return [
        (k, name) for keys, name in pairs for k in ([keys] if isinstance(keys, str) else keys) if k
    ]


def _unique(
    entries: Sequence[_E],
    kind: str,
    what: str,
    keys_of: Callable[[_E], Iterable[tuple[object, object]]] | None = None,
) -> None:
    """Refuse a code (or a name) that two entries share, naming both."""
    owners: dict[object, int] = {}
    for index, entry in enumerate(entries):
        code = getattr(entry, "code", None)
        for key, shown in keys_of(entry) if keys_of else [(code, code)]:
            first = owners.setdefault(key, index)
            if first != index:
                other = _entry_label(kind, first, entries[first])
                problem = f"also names {other}" if what == "name or alias" else f"(also {other})"
                raise _problem(f"{what} {shown!r} {problem}", _entry_label(kind, index, entry))


# The entries' tables in the file, each with the fields that name an entry in an error.
_TABLES: Mapping[str, tuple[type[_Table], tuple[str, ...]]] = {
    "centers": (CenterTable, ("code",)),
    "disease_groups": (DiseaseGroupTable, ("code",)),
    "document_types": (DocumentTypeTable, ("code",)),
    "regions": (RegionTable, ("code", "name_ru")),
    "time_zones": (TimeZoneTable, ("tz",)),
}
_EMPTY = {
    "centers": "no [[centers]] entries",
    "document_types": "no [[document_types]] entries",
    "regions": "no [[regions]] entries",
    "disease_groups": "has no disease groups (add [[centers.disease_groups]] tables)",
}


def _name(table: _Table, prefix: str) -> LocalizedName:
    return LocalizedName(getattr(table, f"{prefix}_ru"), getattr(table, f"{prefix}_en"))


def _entry_label(kind: str, index: int, entry: object) -> str:
    """``regions[14] 14 'Республика Саха (Якутия)'``: the entry's place and what names it."""
    values = dict(entry) if isinstance(entry, BaseModel | dict) else {}
    label = f"{kind}[{index}]"
    for name in _TABLES[kind][1]:
        value = values.get(name)
        if isinstance(value, str) and value.strip():
            label += f" {value.strip()!r}"
        elif isinstance(value, int) and not isinstance(value, bool):
            label += f" {value}"
    return label


def _type_name(value: object) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "true/false"}
    names |= {list: "a list", dict: "a table"}
    return names.get(type(value), type(value).__name__)


# Pydantic's errors as the catalog's editors read them ({field} is the TOML key).
_PROBLEMS = {
    "missing": "missing field {field!r}",
    "extra_forbidden": "unknown field {field!r} (known fields: {known})",
    "tuple_type": "field {field!r} must be a list of strings, not {type}",
    "int_type": "field {field!r} must be a whole number, not {type}",
    "string_type": "field {field!r} must be a non-empty string, not {type}",
    "string_too_short": "field {field!r} must be a non-empty string, not {type}",
    "string_pattern_mismatch": "field {field!r} must be up to 32 lowercase latin letters, "
    "digits and '_' starting with a letter, not {value!r}",
    "greater_than": "field {field!r} must be a positive number, not {value!r}",
}


def _describe(data: object, error: ErrorDetails) -> str:
    """One line naming the broken entry (as the file shows it) and what is wrong there."""
    loc, node, where = list(error["loc"]), data, []
    table: type[_Table] = CatalogFile
    while len(loc) > 1 and loc[0] in _TABLES and isinstance(loc[1], int) and isinstance(node, dict):
        kind, index = str(loc.pop(0)), int(loc.pop(0))
        node = node[kind][index]
        where.append(_entry_label(kind, index, node))
        table = _TABLES[kind][0]
    field, value, kind = (str(loc[0]) if loc else ""), error["input"], error["type"]
    if kind == "catalog":
        context = error.get("ctx", {})
        where += [context["where"]] if context.get("where") else []
        problem = str(context["text"])
    elif not field:
        problem = f"must be a table, not {_type_name(value)}"
    elif kind in ("missing", "too_short") and field in _EMPTY:
        problem = _EMPTY[field]
    elif field in _TABLES:
        problem = f"field {field!r} must be a list of tables ([[{field}]])"
    elif len(loc) > 1 and kind != "extra_forbidden":
        problem = f"field {field!r} must contain non-empty strings, not {_type_name(value)}"
    else:
        template = _PROBLEMS.get(kind, "field {field!r}: {msg}")
        value = value.strip() if isinstance(value, str) else value
        known = ", ".join(table.model_fields)
        problem = template.format(
            field=field, type=_type_name(value), value=value, known=known, msg=error["msg"]
        )
    return _one_line(f"catalog: {': '.join(where) or 'top level'}: {problem}")


def _one_line(message: str) -> str:
    return " ".join(message.split())


def load_catalog(path: str | Path) -> Catalog:
    """Read and check a catalog file; any problem raises CatalogError naming the entry."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise CatalogError(
            _one_line(f"catalog: cannot read {path}: {exc.strerror or exc}")
        ) from exc
    except UnicodeDecodeError as exc:
        raise CatalogError(
            f"catalog: {path}: not UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(_one_line(f"catalog: {path}: TOML syntax error: {exc}")) from exc
    try:
        return CatalogFile.model_validate(data).build()
    except ValidationError as exc:
        raise CatalogError(_describe(data, exc.errors()[0])) from None


def json_schema() -> str:
    """The JSON Schema of the catalog file, as committed in ``bot/catalog.schema.json``."""
    return json.dumps(CatalogFile.model_json_schema(), ensure_ascii=False, indent=2) + "\n"


def _default_zone_label(tz: str, region: LocalizedName) -> LocalizedName:
    return LocalizedName(
        ru=f"{utc_offset_label(tz, 'ru')}: {region.ru}",
        en=f"{utc_offset_label(tz, 'en')}: {region.en}",
    )


if __name__ == "__main__":  # python -m bot.catalog: rewrite the schema after changing the models
    schema_path().write_text(json_schema(), encoding="utf-8")
