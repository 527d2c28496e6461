"""The programme's catalog as data: centers, disease groups, document types and regions.

Read from one TOML file (``bot/catalog.toml``): adding a center is an edit of that file, not code.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, NoReturn, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "Catalog",
    "CatalogError",
    "Center",
    "DiseaseGroup",
    "DocumentType",
    "LocalizedName",
    "Region",
    "TimeZoneChoice",
    "default_catalog_path",
    "load_catalog",
    "normalize_text",
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

    def search_regions(self, query: str, locale: str = "ru") -> list[Region]:
        """Regions whose ru or en name, alias or large city matches ``query``, best first.

        Ranks: exact name > the name starts with the query > every query word starts a word
        of the name > the same with Russian word endings ("москва" finds "Московская") > the
        query occurs anywhere in the name. Ties are sorted by the name in ``locale``.
        """
        stripped = normalize_text(query)
        if stripped.isdigit():
            found = self.region(int(stripped))
            return [found] if found else []
        words = tuple(t for t in _tokens(query) if t not in _REGION_NOISE)
        if not words:
            return []
        exact = self.match_region(query)
        phrase = " ".join(words)
        ranked: list[tuple[int, str, Region]] = []
        for region, variants in self._region_search:
            rank = 0 if region is exact else min(_search_rank(words, phrase, v) for v in variants)
            if rank < _NO_MATCH:
                ranked.append((rank, normalize_text(region.name.get(locale)), region))
        ranked.sort(key=lambda item: (item[0], item[1], item[2].code))
        return [region for _, _, region in ranked]

    def match_center(self, text: str) -> Center | None:
        """The center named by ``text``: its code, short or full name, or an alias."""
        key = " ".join(_center_canonical(_tokens(text)))
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


def _center_keys(center: Center) -> list[str]:
    keys = (" ".join(_center_canonical(_tokens(name))) for name in _center_names(center))
    return [key for key in dict.fromkeys(keys) if key]


def _disease_group_names(group: DiseaseGroup) -> tuple[str, ...]:
    return (group.code, group.name.ru, group.name.en, *group.aliases)


def _disease_group_keys(group: DiseaseGroup) -> set[str]:
    return {" ".join(_tokens(name)) for name in _disease_group_names(group)} - {""}


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def default_catalog_path() -> Path:
    """The catalog shipped with the bot: ``bot/catalog.toml``."""
    return Path(__file__).with_name("catalog.toml")


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
    return _build_catalog(data)


_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")

_TOP_FIELDS = ("centers", "document_types", "regions")
_DOCUMENT_FIELDS = (
    "code",
    "name_ru",
    "name_en",
    "short_name_ru",
    "short_name_en",
    "keywords",
    "weak_keywords",
)
_CENTER_FIELDS = (
    "code",
    "short_name_ru",
    "short_name_en",
    "full_name_ru",
    "full_name_en",
    "aliases",
    "time_zone",
    "staff_chat_id",
    "required_documents",
    "optional_documents",
    "disease_groups",
)
_GROUP_FIELDS = ("code", "name_ru", "name_en", "aliases", "required_documents")
_REGION_FIELDS = ("code", "name_ru", "name_en", "aliases", "cities", "time_zone", "time_zones")
_ZONE_FIELDS = ("tz", "label_ru", "label_en")


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _fail(where: str, problem: str) -> NoReturn:
    raise CatalogError(_one_line(f"catalog: {where}: {problem}"))


def _type_name(value: object) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "true/false"}
    names |= {list: "a list", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _entry_label(kind: str, index: int, data: object, *id_fields: str) -> str:
    label = f"{kind}[{index}]"
    if isinstance(data, dict):
        for name in id_fields:
            value = data.get(name)
            if isinstance(value, str) and value.strip():
                label += f" {value.strip()!r}"
            elif isinstance(value, int) and not isinstance(value, bool):
                label += f" {value}"
    return label


class _Table:
    """One TOML table of the catalog, read field by field with errors naming the entry."""

    def __init__(self, data: object, where: str, fields: Sequence[str]) -> None:
        if not isinstance(data, dict):
            _fail(where, f"must be a table, not {_type_name(data)}")
        for key in data:
            if key not in fields:
                _fail(where, f"unknown field {key!r} (known fields: {', '.join(fields)})")
        self.data: dict[str, Any] = data
        self.where = where

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str) -> object:
        if key not in self.data:
            _fail(self.where, f"missing field {key!r}")
        return self.data[key]

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str) or not value.strip():
            _fail(self.where, f"field {key!r} must be a non-empty string, not {_type_name(value)}")
        return value.strip()

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if self.has(key) else None

    def code(self, key: str = "code") -> str:
        value = self.text(key)
        if not _CODE.fullmatch(value):
            _fail(
                self.where,
                f"field {key!r} must be up to 32 lowercase latin letters, digits and '_' "
                f"starting with a letter, not {value!r}",
            )
        return value

    def integer(self, key: str) -> int:
        value = self._get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            _fail(self.where, f"field {key!r} must be a whole number, not {_type_name(value)}")
        return value

    def texts(self, key: str, *, required: bool = True) -> tuple[str, ...]:
        if not required and not self.has(key):
            return ()
        value = self._get(key)
        if not isinstance(value, list):
            _fail(self.where, f"field {key!r} must be a list of strings, not {_type_name(value)}")
        for item in value:
            if not isinstance(item, str) or not item.strip():
                _fail(
                    self.where,
                    f"field {key!r} must contain non-empty strings, not {_type_name(item)}",
                )
        return tuple(item.strip() for item in value)

    def tables(self, key: str) -> list[object]:
        if not self.has(key):
            return []
        value = self._get(key)
        if not isinstance(value, list):
            _fail(self.where, f"field {key!r} must be a list of tables ([[{key}]])")
        return value

    def name(self, prefix: str) -> LocalizedName:
        return LocalizedName(ru=self.text(f"{prefix}_ru"), en=self.text(f"{prefix}_en"))


def _check_time_zone(tz: str, where: str) -> None:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        _fail(where, f"unknown time zone {tz!r} (use an IANA name such as 'Europe/Moscow')")


def _check_no_repeats(codes: Iterable[str], where: str, what: str) -> None:
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            _fail(where, f"{what} {code!r} is listed twice")
        seen.add(code)


def _build_catalog(data: dict[str, Any]) -> Catalog:
    top = _Table(data, "top level", _TOP_FIELDS)
    for key in _TOP_FIELDS:
        if not top.tables(key):
            _fail("top level", f"no [[{key}]] entries")
    document_types = _read_document_types(top.tables("document_types"))
    known_documents = {doc.code for doc in document_types}
    centers = _read_centers(top.tables("centers"), known_documents)
    regions = _read_regions(top.tables("regions"))
    return Catalog(centers=centers, document_types=document_types, regions=regions)


def _read_document_types(raw_tables: list[object]) -> tuple[DocumentType, ...]:
    documents: list[DocumentType] = []
    seen: dict[str, str] = {}
    for index, raw in enumerate(raw_tables):
        where = _entry_label("document_types", index, raw, "code")
        table = _Table(raw, where, _DOCUMENT_FIELDS)
        code = table.code()
        if code in seen:
            _fail(where, f"duplicate document type code {code!r} (also {seen[code]})")
        seen[code] = where
        keyword_lists = []
        for field_name in ("keywords", "weak_keywords"):
            keywords = table.texts(field_name, required=field_name == "keywords")
            for keyword in keywords:
                if not _tokens(keyword):
                    _fail(where, f"{field_name[:-1].replace('_', ' ')} {keyword!r} has no letters")
            keyword_lists.append(tuple(" ".join(_tokens(k)) for k in keywords))
        documents.append(
            DocumentType(
                code=code,
                name=table.name("name"),
                short_name=table.name("short_name"),
                keywords=keyword_lists[0],
                weak_keywords=keyword_lists[1],
            )
        )
    return tuple(documents)


def _read_centers(raw_tables: list[object], known_documents: set[str]) -> tuple[Center, ...]:
    centers: list[Center] = []
    seen: dict[str, str] = {}
    key_owner: dict[str, str] = {}
    for index, raw in enumerate(raw_tables):
        where = _entry_label("centers", index, raw, "code")
        table = _Table(raw, where, _CENTER_FIELDS)
        code = table.code()
        if code in seen:
            _fail(where, f"duplicate center code {code!r} (also {seen[code]})")
        seen[code] = where
        time_zone = table.text("time_zone")
        _check_time_zone(time_zone, where)
        required = table.texts("required_documents")
        optional = table.texts("optional_documents", required=False)
        for kind, codes in (("required", required), ("optional", optional)):
            _check_no_repeats(codes, where, f"{kind} document")
            for doc in codes:
                if doc not in known_documents:
                    _fail(where, f"{kind} document {doc!r} is not a known document type")
        for doc in required:
            if doc in optional:
                _fail(where, f"document {doc!r} is both required and optional")
        center = Center(
            code=code,
            short_name=table.name("short_name"),
            full_name=table.name("full_name"),
            time_zone=time_zone,
            staff_chat_id=table.integer("staff_chat_id"),
            disease_groups=_read_disease_groups(table, required + optional),
            required_documents=required,
            optional_documents=optional,
            aliases=table.texts("aliases", required=False),
        )
        for name in _center_names(center):
            key = " ".join(_center_canonical(_tokens(name)))
            if key and key_owner.setdefault(key, where) != where:
                _fail(where, f"name or alias {name!r} also names {key_owner[key]}")
        centers.append(center)
    return tuple(centers)


def _read_disease_groups(center: _Table, documents: Sequence[str]) -> tuple[DiseaseGroup, ...]:
    raw_tables = center.tables("disease_groups")
    if not raw_tables:
        _fail(center.where, "has no disease groups (add [[centers.disease_groups]] tables)")
    groups: list[DiseaseGroup] = []
    seen: dict[str, str] = {}
    key_owner: dict[str, str] = {}
    for index, raw in enumerate(raw_tables):
        where = f"{center.where}: " + _entry_label("disease_groups", index, raw, "code")
        table = _Table(raw, where, _GROUP_FIELDS)
        code = table.code()
        if code in seen:
            _fail(where, f"duplicate disease group code {code!r} (also {seen[code]})")
        seen[code] = where
        required = table.texts("required_documents", required=False)
        _check_no_repeats(required, where, "required document")
        for doc in required:
            if doc not in documents:
                _fail(
                    where,
                    f"required document {doc!r} is not among the center's required_documents "
                    "or optional_documents",
                )
        group = DiseaseGroup(
            code=code,
            name=table.name("name"),
            aliases=table.texts("aliases", required=False),
            required_documents=required,
        )
        for name in _disease_group_names(group):
            key = " ".join(_tokens(name))
            if key and key_owner.setdefault(key, where) != where:
                _fail(where, f"name or alias {name!r} also names {key_owner[key]}")
        groups.append(group)
    return tuple(groups)


def _read_regions(raw_tables: list[object]) -> tuple[Region, ...]:
    regions: list[Region] = []
    seen: dict[int, str] = {}
    key_owner: dict[str, str] = {}
    for index, raw in enumerate(raw_tables):
        where = _entry_label("regions", index, raw, "code", "name_ru")
        table = _Table(raw, where, _REGION_FIELDS)
        code = table.integer("code")
        if code <= 0:
            _fail(where, f"region code must be a positive number, not {code}")
        if code in seen:
            _fail(where, f"duplicate region code {code} (also {seen[code]})")
        seen[code] = where
        name = table.name("name")
        region = Region(
            code=code,
            name=name,
            time_zones=_read_time_zones(table, name),
            aliases=table.texts("aliases", required=False),
            cities=table.texts("cities", required=False),
        )
        for region_name in _region_names(region):
            for key in _keys_of_name(region_name):
                if key_owner.setdefault(key, where) != where:
                    _fail(where, f"name or alias {region_name!r} also names {key_owner[key]}")
        regions.append(region)
    return tuple(regions)


def _read_time_zones(region: _Table, name: LocalizedName) -> tuple[TimeZoneChoice, ...]:
    where = region.where
    if region.has("time_zone") and region.has("time_zones"):
        _fail(where, "give either time_zone or [[regions.time_zones]], not both")
    if region.has("time_zone"):
        tz = region.text("time_zone")
        _check_time_zone(tz, where)
        return (TimeZoneChoice(tz=tz, label=_default_zone_label(tz, name)),)
    raw_tables = region.tables("time_zones")
    if not raw_tables:
        _fail(where, "has no time zone (add time_zone or [[regions.time_zones]])")
    choices: list[TimeZoneChoice] = []
    for index, raw in enumerate(raw_tables):
        zone_where = f"{where}: " + _entry_label("time_zones", index, raw, "tz")
        table = _Table(raw, zone_where, _ZONE_FIELDS)
        tz = table.text("tz")
        _check_time_zone(tz, zone_where)
        if any(choice.tz == tz for choice in choices):
            _fail(zone_where, f"time zone {tz!r} is listed twice")
        if len(raw_tables) > 1 or table.has("label_ru") or table.has("label_en"):
            if len(raw_tables) > 1 and not (table.has("label_ru") and table.has("label_en")):
                _fail(zone_where, "needs label_ru and label_en: the region has several zones")
            label = table.name("label")
        else:
            label = _default_zone_label(tz, name)
        choices.append(TimeZoneChoice(tz=tz, label=label))
    return tuple(choices)


def _default_zone_label(tz: str, region: LocalizedName) -> LocalizedName:
    return LocalizedName(
        ru=f"{utc_offset_label(tz, 'ru')}: {region.ru}",
        en=f"{utc_offset_label(tz, 'en')}: {region.en}",
    )
