"""The bundled catalog matches the letter, its tolerant matching works, and a broken catalog
file is refused with a one-line message naming the entry."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.catalog import (
    Catalog,
    CatalogError,
    LocalizedName,
    Region,
    TimeZoneChoice,
    default_catalog_path,
    json_schema,
    load_catalog,
    normalize_text,
    schema_path,
    utc_offset_label,
)

# The subjects' numbers as in tax and vehicle region codes: 01-79, the four autonomous okrugs,
# and the subjects admitted in 2014 and 2022.
EXPECTED_REGION_CODES = {*range(1, 80), 83, 86, 87, 89, 90, 91, 92, 93, 94, 95}

BAKULEV_GROUPS = [
    "врожденные пороки сердца",
    "приобретенные пороки сердца",
    "ишемическая болезнь сердца",
    "кардиомиопатии",
    "нарушения ритма сердца",
    "сочетанная патология",
    "сосудистая патология у взрослых и детей: артериальная и венозная",
]
KULAKOV_GROUPS = [
    "врожденные пороки развития у плода",
    "аритмии у плода",
    "онкологические заболевания во время беременности",
    "онкологические заболевания женских половых органов",
    "патология молочной железы",
    "пороки развития матки и влагалища",
]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(default_catalog_path())


def codes(regions: list[Region]) -> list[int]:
    return [region.code for region in regions]


# --- the bundled data ------------------------------------------------------------------------


def test_default_path_is_the_bundled_file() -> None:
    path = default_catalog_path()
    assert path.name == "catalog.toml"
    assert path.parent.name == "bot"
    assert path.is_file()


def test_committed_json_schema_is_up_to_date() -> None:
    """Editors of the catalog get the schema the models check; ``python -m bot.catalog``
    rewrites it."""
    assert schema_path().read_text(encoding="utf-8") == json_schema(), (
        "bot/catalog.schema.json is stale: run python -m bot.catalog"
    )
    first_line = default_catalog_path().read_text(encoding="utf-8").splitlines()[0]
    assert first_line == f"#:schema ./{schema_path().name}"


def test_has_all_89_federal_subjects_with_unique_codes(catalog: Catalog) -> None:
    assert len(catalog.regions) == 89
    assert {region.code for region in catalog.regions} == EXPECTED_REGION_CODES
    assert len({region.name.ru for region in catalog.regions}) == 89
    assert len({region.name.en for region in catalog.regions}) == 89


def test_every_time_zone_is_known_to_zoneinfo(catalog: Catalog) -> None:
    known = zoneinfo.available_timezones()
    for region in catalog.regions:
        assert region.time_zones, region.name.ru
        for choice in region.time_zones:
            assert choice.tz in known, (region.name.ru, choice.tz)
            assert choice.label.ru and choice.label.en
    for center in catalog.centers:
        assert center.time_zone in known


@pytest.mark.parametrize(
    ("code", "name_ru", "tz"),
    [
        (1, "Республика Адыгея (Адыгея)", "Europe/Moscow"),
        (2, "Республика Башкортостан", "Asia/Yekaterinburg"),
        (3, "Республика Бурятия", "Asia/Irkutsk"),
        (4, "Республика Алтай", "Asia/Barnaul"),
        (18, "Удмуртская Республика", "Europe/Samara"),
        (22, "Алтайский край", "Asia/Barnaul"),
        (24, "Красноярский край", "Asia/Krasnoyarsk"),
        (25, "Приморский край", "Asia/Vladivostok"),
        (28, "Амурская область", "Asia/Yakutsk"),
        (30, "Астраханская область", "Europe/Astrakhan"),
        (34, "Волгоградская область", "Europe/Volgograd"),
        (38, "Иркутская область", "Asia/Irkutsk"),
        (39, "Калининградская область", "Europe/Kaliningrad"),
        (41, "Камчатский край", "Asia/Kamchatka"),
        (42, "Кемеровская область — Кузбасс", "Asia/Novokuznetsk"),
        (43, "Кировская область", "Europe/Kirov"),
        (49, "Магаданская область", "Asia/Magadan"),
        (54, "Новосибирская область", "Asia/Novosibirsk"),
        (55, "Омская область", "Asia/Omsk"),
        (56, "Оренбургская область", "Asia/Yekaterinburg"),
        (63, "Самарская область", "Europe/Samara"),
        (64, "Саратовская область", "Europe/Saratov"),
        (65, "Сахалинская область", "Asia/Sakhalin"),
        (70, "Томская область", "Asia/Tomsk"),
        (73, "Ульяновская область", "Europe/Ulyanovsk"),
        (75, "Забайкальский край", "Asia/Chita"),
        (77, "г. Москва", "Europe/Moscow"),
        (78, "г. Санкт-Петербург", "Europe/Moscow"),
        (79, "Еврейская автономная область", "Asia/Vladivostok"),
        (83, "Ненецкий автономный округ", "Europe/Moscow"),
        (86, "Ханты-Мансийский автономный округ — Югра", "Asia/Yekaterinburg"),
        (87, "Чукотский автономный округ", "Asia/Anadyr"),
        (89, "Ямало-Ненецкий автономный округ", "Asia/Yekaterinburg"),
        (90, "Запорожская область", "Europe/Moscow"),
        (91, "Республика Крым", "Europe/Simferopol"),
        (92, "г. Севастополь", "Europe/Simferopol"),
        (93, "Донецкая Народная Республика", "Europe/Moscow"),
        (94, "Луганская Народная Республика", "Europe/Moscow"),
        (95, "Херсонская область", "Europe/Moscow"),
    ],
)
def test_region_names_and_zones(catalog: Catalog, code: int, name_ru: str, tz: str) -> None:
    region = catalog.region(code)
    assert region is not None
    assert region.name.ru == name_ru
    assert [choice.tz for choice in region.time_zones] == [tz]
    assert region.default_time_zone == tz


def test_yakutia_offers_its_three_offsets(catalog: Catalog) -> None:
    yakutia = catalog.region(14)
    assert yakutia is not None
    assert yakutia.name.ru == "Республика Саха (Якутия)"
    zones = [choice.tz for choice in yakutia.time_zones]
    assert zones == ["Asia/Yakutsk", "Asia/Ust-Nera", "Asia/Srednekolymsk"]
    labels = [choice.label.ru for choice in yakutia.time_zones]
    assert len(set(labels)) == 3
    assert "Якутск" in labels[0]
    assert "Усть-Нера" in labels[1]
    assert "Среднеколымск" in labels[2]
    # Each label states the offset its zone really has.
    for choice in yakutia.time_zones:
        assert choice.label.ru.startswith(utc_offset_label(choice.tz, "ru"))
        assert choice.label.en.startswith(utc_offset_label(choice.tz, "en"))


def test_only_yakutia_asks_for_a_zone(catalog: Catalog) -> None:
    several = [region.code for region in catalog.regions if len(region.time_zones) > 1]
    assert several == [14]


def test_single_zone_label_gives_offset_and_region(catalog: Catalog) -> None:
    irkutsk = catalog.region(38)
    assert irkutsk is not None
    assert irkutsk.time_zones[0].label == LocalizedName(
        ru="UTC+8 (МСК+5): Иркутская область", en="UTC+8 (MSK+5): Irkutsk Oblast"
    )
    sakhalin = catalog.region(65)
    assert sakhalin is not None
    assert "Северо-Курильск" in sakhalin.time_zones[0].label.ru


def test_bakulev_center_as_in_the_letter(catalog: Catalog) -> None:
    center = catalog.center("bakulev")
    assert center is not None
    assert center.full_name.ru == (
        "ФГБУ «НМИЦ сердечно-сосудистой хирургии имени А.Н. Бакулева» Минздрава России"
    )
    assert center.short_name.ru == "НМИЦ ССХ им. А.Н. Бакулева"
    assert center.full_name.en and center.short_name.en
    assert center.time_zone == "Europe/Moscow"
    assert isinstance(center.staff_chat_id, int)
    assert [normalize_text(g.name.ru) for g in center.disease_groups] == BAKULEV_GROUPS
    assert center.required_documents == ("discharge", "ecg", "echo")
    assert center.optional_documents == ("ct", "mri", "doctor_conclusion", "other")


def test_kulakov_center_as_in_the_letter(catalog: Catalog) -> None:
    center = catalog.center("kulakov")
    assert center is not None
    assert center.full_name.ru == (
        "ФГБУ «НМИЦ акушерства, гинекологии и перинатологии имени В.И. Кулакова» Минздрава России"
    )
    assert center.short_name.ru == "НМИЦ АГП им. В.И. Кулакова"
    assert center.time_zone == "Europe/Moscow"
    assert [normalize_text(g.name.ru) for g in center.disease_groups] == KULAKOV_GROUPS
    assert center.required_documents == ("discharge", "pelvic_us")
    assert set(center.optional_documents) == {
        "exchange_card",
        "fetal_us",
        "ct",
        "mri",
        "doctor_conclusion",
        "other",
    }


def test_pregnancy_documents_are_required_only_for_pregnancy_groups(catalog: Catalog) -> None:
    center = catalog.center("kulakov")
    assert center is not None
    pregnancy = {"fetal_malform", "fetal_arrhythmia", "onco_pregnancy"}
    for group in center.disease_groups:
        required = center.required_documents_for(group)
        assert required[:2] == ("discharge", "pelvic_us")
        has_pregnancy_docs = {"exchange_card", "fetal_us"} <= set(required)
        assert has_pregnancy_docs == (group.code in pregnancy), group.code
    assert center.required_documents_for(None) == center.required_documents
    assert center.required_documents_for("breast") == ("discharge", "pelvic_us")


def test_centers_have_distinct_placeholder_staff_chats(catalog: Catalog) -> None:
    chats = [center.staff_chat_id for center in catalog.centers]
    assert len(set(chats)) == len(chats) == 2
    assert all(chat < 0 for chat in chats)


def test_document_types_and_codes(catalog: Catalog) -> None:
    assert [doc.code for doc in catalog.document_types] == [
        "discharge",
        "ecg",
        "echo",
        "ct",
        "mri",
        "pelvic_us",
        "fetal_us",
        "exchange_card",
        "doctor_conclusion",
        "other",
    ]
    for doc in catalog.document_types:
        assert doc.name.ru and doc.name.en and doc.short_name.ru and doc.short_name.en
        assert doc.keywords
        assert all(k == k.lower() for k in doc.keywords)
        assert re.fullmatch(r"[a-z_]+", doc.code)
    for center in catalog.centers:
        for code in center.accepted_documents:
            assert catalog.document_type(code) is not None
        for group in center.disease_groups:
            assert center.disease_group(group.code) is group
            assert re.fullmatch(r"[a-z0-9_]{1,32}", group.code)
    ecg = catalog.document_type("ecg")
    assert ecg is not None and ecg.short_name.ru == "ЭКГ"
    assert catalog.document_type("xray") is None
    assert catalog.center("nope") is None
    assert catalog.region(0) is None


def test_localized_name_falls_back_to_russian() -> None:
    name = LocalizedName(ru="Выписка", en="Discharge")
    assert name.get("en") == "Discharge"
    assert name.get("en-US") == "Discharge"
    assert name.get("ru") == "Выписка"
    assert name.get("uk") == "Выписка"
    assert name.get("") == "Выписка"


def test_normalize_text() -> None:
    assert normalize_text("  «Ёлка  и\tЕЛЬ»,  ") == "елка и ель"
    assert normalize_text("Иркутская обл.") == "иркутская обл"
    assert normalize_text("...") == ""


def test_utc_offset_label() -> None:
    at = datetime(2026, 1, 15, tzinfo=UTC)
    assert utc_offset_label("Asia/Irkutsk", "ru", at) == "UTC+8 (МСК+5)"
    assert utc_offset_label("Asia/Irkutsk", "en", at) == "UTC+8 (MSK+5)"
    assert utc_offset_label("Europe/Moscow", "ru", at) == "UTC+3 (МСК)"
    assert utc_offset_label("Europe/Kaliningrad", "ru", at) == "UTC+2 (МСК-1)"
    assert utc_offset_label("Asia/Kolkata", "en", at) == "UTC+5:30 (MSK+2:30)"


# --- search and matching -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("иркутск", [38]),
        ("Иркутская обл.", [38]),
        ("  ИРКУТСКАЯ   область ", [38]),
        ("москва", [77, 50]),
        ("Москва", [77, 50]),
        ("moscow", [77, 50]),
        ("саха", [14, 65]),
        ("якутия", [14]),
        ("Yakutia", [14]),
        ("хмао", [86]),
        ("Орёл", [57]),
        ("Орел", [57]),
        ("казань", [16]),
        ("Нижний Новгород", [52]),
        ("ростов-на-дону", [61]),
        ("38", [38]),
    ],
)
def test_search_regions_finds_best_first(catalog: Catalog, query: str, first: list[int]) -> None:
    assert codes(catalog.search_regions(query))[: len(first)] == first


def test_search_regions_ranks_then_sorts_by_name(catalog: Catalog) -> None:
    krais = catalog.search_regions("край")
    assert len(krais) == 9
    names = [region.name.ru for region in krais]
    assert names == sorted(names)
    english = catalog.search_regions("krai", "en")
    assert [r.name.en for r in english] == sorted(r.name.en for r in english)
    assert len(english) == 9


def test_search_regions_substring_and_nothing(catalog: Catalog) -> None:
    # "омск" is the start of Омская область and inside Томская область.
    assert codes(catalog.search_regions("омск"))[0] == 55
    assert 70 in codes(catalog.search_regions("омск"))
    assert catalog.search_regions("") == []
    assert catalog.search_regions(" .,- ") == []
    assert catalog.search_regions("нарния") == []
    assert catalog.search_regions("999") == []


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Иркутская область", 38),
        ("иркутская обл.", 38),
        ("ИРКУТСКАЯ  ОБЛ", 38),
        ("обл. Иркутская", 38),
        ("Irkutsk Oblast", 38),
        ("Irkutsk region", 38),
        ("Республика Саха (Якутия)", 14),
        ("Республика Саха", 14),
        ("респ. Саха (Якутия)", 14),
        ("Якутия", 14),
        ("Саха", 14),
        ("Москва", 77),
        ("г. Москва", 77),
        ("г Москва", 77),
        ("Московская обл.", 50),
        ("Санкт Петербург", 78),
        ("СПб", 78),
        ("St. Petersburg", 78),
        ("Ханты-Мансийский АО", 86),
        ("ХМАО - Югра", 86),
        ("Кемеровская область", 42),
        ("Кузбасс", 42),
        ("Чувашия", 21),
        ("Татарстан", 16),
        ("Бурятия респ.", 3),
        ("Еврейская АО", 79),
        ("Северная Осетия — Алания", 15),
        ("ДНР", 93),
        ("Алтайский край", 22),
        ("Республика Алтай", 4),
        ("38", 38),
    ],
)
def test_match_region_tolerant_exact(catalog: Catalog, text: str, code: int) -> None:
    region = catalog.match_region(text)
    assert region is not None, text
    assert region.code == code


@pytest.mark.parametrize("text", ["", "Иркутск", "Иркутская", "Казань", "Нарния", "обл.", "0"])
def test_match_region_rejects_partial_or_unknown(catalog: Catalog, text: str) -> None:
    assert catalog.match_region(text) is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("bakulev", "bakulev"),
        ("НМИЦ ССХ им. А.Н. Бакулева", "bakulev"),
        (
            "ФГБУ «НМИЦ сердечно-сосудистой хирургии имени А.Н. Бакулева» Минздрава России",
            "bakulev",
        ),
        ("ФГБУ «НМИЦ ССХ имени А.Н. Бакулева» Минздрава России", "bakulev"),
        ("нмиц ссх им. бакулева", "bakulev"),
        ("Бакулева", "bakulev"),
        ("НМИЦ АГП им. В. И. Кулакова", "kulakov"),
        ("ФГБУ «НМИЦ акушерства, гинекологии и перинатологии имени В.И. Кулакова»", "kulakov"),
        ("Kulakov", "kulakov"),
    ],
)
def test_match_center(catalog: Catalog, text: str, code: str) -> None:
    center = catalog.match_center(text)
    assert center is not None, text
    assert center.code == code


@pytest.mark.parametrize("text", ["", "НМИЦ", "Склифосовского"])
def test_match_center_rejects_unknown(catalog: Catalog, text: str) -> None:
    assert catalog.match_center(text) is None


@pytest.mark.parametrize(
    ("center", "text", "code"),
    [
        ("bakulev", "ИБС", "ihd"),
        ("bakulev", "Нарушения  ритма сердца.", "arrhythmia"),
        ("bakulev", "нарушенИЯ ритма сердца", "arrhythmia"),
        ("bakulev", "сосудистые патологии у взрослых и детей", "vascular"),
        ("bakulev", "Сосудистая патология у взрослых и детей: артериальная и венозная", "vascular"),
        ("bakulev", "Congenital heart defects", "chd"),
        ("bakulev", "chd", "chd"),
        ("kulakov", "врождённые пороки развития у плода", "fetal_malform"),
        ("kulakov", "Патология молочной железы", "breast"),
    ],
)
def test_match_disease_group(catalog: Catalog, center: str, text: str, code: str) -> None:
    group = catalog.match_disease_group(center, text)
    assert group is not None, text
    assert group.code == code
    by_object = catalog.center(center)
    assert by_object is not None
    assert catalog.match_disease_group(by_object, text) is group


def test_match_disease_group_stays_within_the_center(catalog: Catalog) -> None:
    assert catalog.match_disease_group("kulakov", "ИБС") is None
    assert catalog.match_disease_group("bakulev", "аритмии у плода") is None
    assert catalog.match_disease_group("nope", "ИБС") is None
    assert catalog.match_disease_group("bakulev", "") is None


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("Выписка", "discharge"),
        ("выписки из стационара", "discharge"),
        ("Выписной эпикриз", "discharge"),
        ("Выписка из истории болезни", "discharge"),
        ("ЭКГ", "ecg"),
        ("экг 12.03.2021", "ecg"),
        ("Кардиограмма", "ecg"),
        ("ECG", "ecg"),
        ("Холтер", "ecg"),
        ("ЭХО КГ", "echo"),
        ("Эхо-КГ", "echo"),
        ("ЭхоКГ", "echo"),
        ("эхо", "echo"),
        ("Эхокардиография", "echo"),
        ("УЗИ сердца", "echo"),
        ("узи плода", "fetal_us"),
        ("УЗИ плода 20 недель", "fetal_us"),
        ("ЭхоКГ плода", "fetal_us"),
        ("скрининг 2 триместр, узи", "fetal_us"),
        ("УЗИ органов малого таза", "pelvic_us"),
        ("узи омт", "pelvic_us"),
        ("МРТ", "mri"),
        ("мрт головного мозга", "mri"),
        ("MRI", "mri"),
        ("МРТ, томография", "mri"),
        ("КТ", "ct"),
        ("кт грудной клетки", "ct"),
        ("КТ-ангиография", "ct"),
        ("Компьютерная томография", "ct"),
        ("CT scan", "ct"),
        ("Обменная карта беременной", "exchange_card"),
        ("обменка", "exchange_card"),
        ("Заключение кардиолога", "doctor_conclusion"),
        ("заключение", "doctor_conclusion"),
        ("Заключение МРТ", "mri"),
        ("заключение по ЭКГ", "ecg"),
        ("анализ крови", "other"),
        ("другое", "other"),
    ],
)
def test_document_type_from_caption(catalog: Catalog, caption: str, expected: str) -> None:
    assert catalog.document_type_from_text(caption) == expected


@pytest.mark.parametrize(
    "caption",
    [
        "",
        "   ",
        "фото",
        "УЗИ",  # pelvic or fetal
        "ultrasound",
        "томография",  # CT or MRI
        "контракт",  # "кт" only as a word
        "конструкт",
        "выписка и ЭКГ",  # two documents in one caption
        "ЭКГ, ЭХО",
        "КТГ плода",  # cardiotocography is not an ultrasound
        "анализы и заключение",
    ],
)
def test_document_type_from_caption_ambiguous_or_none(catalog: Catalog, caption: str) -> None:
    assert catalog.document_type_from_text(caption) is None


def test_catalog_built_in_code_has_working_lookups() -> None:
    region = Region(
        code=38,
        name=LocalizedName(ru="Иркутская область", en="Irkutsk Oblast"),
        time_zones=(TimeZoneChoice(tz="Asia/Irkutsk", label=LocalizedName(ru="x", en="x")),),
    )
    catalog = Catalog(centers=(), document_types=(), regions=(region,))
    assert catalog.region(38) is region
    assert catalog.match_region("иркутская обл") is region
    assert catalog.search_regions("ирк") == [region]
    assert catalog.document_type_from_text("ЭКГ") is None
    assert catalog == Catalog(centers=(), document_types=(), regions=(region,))


# --- broken catalogs -----------------------------------------------------------------------------

MINIMAL = """\
[[centers]]
code = "alpha"
short_name_ru = "Альфа"
short_name_en = "Alpha"
full_name_ru = "Центр Альфа"
full_name_en = "Alpha Center"
time_zone = "Europe/Moscow"
staff_chat_id = -1001
required_documents = ["discharge"]
optional_documents = ["other"]

[[centers.disease_groups]]
code = "first"
name_ru = "Первая группа"
name_en = "First group"

[[document_types]]
code = "discharge"
name_ru = "Выписка"
name_en = "Discharge"
short_name_ru = "Выписка"
short_name_en = "Discharge"
keywords = ["выписк"]

[[document_types]]
code = "other"
name_ru = "Другое"
name_en = "Other"
short_name_ru = "Другое"
short_name_en = "Other"
keywords = ["другое"]

[[regions]]
code = 38
name_ru = "Иркутская область"
name_en = "Irkutsk Oblast"
time_zone = "Asia/Irkutsk"

[[regions]]
code = 14
name_ru = "Республика Саха (Якутия)"
name_en = "Republic of Sakha (Yakutia)"

[[regions.time_zones]]
tz = "Asia/Yakutsk"
label_ru = "UTC+9"
label_en = "UTC+9"

[[regions.time_zones]]
tz = "Asia/Ust-Nera"
label_ru = "UTC+10"
label_en = "UTC+10"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(text, encoding="utf-8")
    return path


def broken(tmp_path: Path, text: str) -> str:
    with pytest.raises(CatalogError) as caught:
        load_catalog(write(tmp_path, text))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("catalog: ")
    return message


def replaced(old: str, new: str, text: str = MINIMAL) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_minimal_catalog_loads(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path, MINIMAL))
    assert [c.code for c in catalog.centers] == ["alpha"]
    assert [r.code for r in catalog.regions] == [38, 14]
    assert len(catalog.regions[1].time_zones) == 2
    assert load_catalog(str(write(tmp_path, MINIMAL))) == catalog


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'time_zone = "Asia/Irkutsk"',
            'time_zone = "Asia/Nowhere"',
            "catalog: regions[0] 38 'Иркутская область': unknown time zone 'Asia/Nowhere'",
        ),
        (
            'tz = "Asia/Ust-Nera"',
            'tz = "Mars/Olympus"',
            "catalog: regions[1] 14 'Республика Саха (Якутия)': time_zones[1] 'Mars/Olympus': "
            "unknown time zone 'Mars/Olympus'",
        ),
        (
            'time_zone = "Europe/Moscow"',
            'time_zone = "MSK"',
            "catalog: centers[0] 'alpha': unknown time zone 'MSK'",
        ),
        (
            'required_documents = ["discharge"]',
            'required_documents = ["ultrasound"]',
            "catalog: centers[0] 'alpha': required document 'ultrasound' is not a known "
            "document type",
        ),
        (
            'optional_documents = ["other"]',
            'optional_documents = ["other", "discharge"]',
            "catalog: centers[0] 'alpha': document 'discharge' is both required and optional",
        ),
        (
            "code = 14",
            "code = 38",
            "catalog: regions[1] 38 'Республика Саха (Якутия)': duplicate region code 38 "
            "(also regions[0] 38 'Иркутская область')",
        ),
        (
            'code = "other"',
            'code = "discharge"',
            "catalog: document_types[1] 'discharge': duplicate document type code 'discharge'",
        ),
        (
            'name_en = "Irkutsk Oblast"\n',
            "",
            "catalog: regions[0] 38 'Иркутская область': missing field 'name_en'",
        ),
        (
            "staff_chat_id = -1001",
            'staff_chat_id = "-1001"',
            "catalog: centers[0] 'alpha': field 'staff_chat_id' must be a whole number, "
            "not a string",
        ),
        (
            'name_ru = "Первая группа"',
            'name_ru = "Первая группа"\nnames_en = "typo"',
            "catalog: centers[0] 'alpha': disease_groups[0] 'first': unknown field 'names_en'",
        ),
        (
            'time_zone = "Asia/Irkutsk"\n',
            "",
            "catalog: regions[0] 38 'Иркутская область': has no time zone",
        ),
        (
            'code = 38\nname_ru = "Иркутская область"',
            'code = 38\nname_ru = "Иркутская область"\ntime_zones = []',
            "catalog: regions[0] 38 'Иркутская область': give either time_zone or",
        ),
        (
            'label_ru = "UTC+10"\nlabel_en = "UTC+10"\n',
            "",
            "catalog: regions[1] 14 'Республика Саха (Якутия)': time_zones[1] 'Asia/Ust-Nera': "
            "needs label_ru and label_en",
        ),
        (
            'name_en = "Republic of Sakha (Yakutia)"',
            'name_en = "Republic of Sakha (Yakutia)"\naliases = ["Иркутская обл."]',
            "catalog: regions[1] 14 'Республика Саха (Якутия)': name or alias 'Иркутская обл.' "
            "also names regions[0] 38 'Иркутская область'",
        ),
        (
            'code = "alpha"',
            'code = "Alpha Center"',
            "catalog: centers[0] 'Alpha Center': field 'code' must be",
        ),
        (
            'keywords = ["другое"]',
            'keywords = "другое"',
            "catalog: document_types[1] 'other': field 'keywords' must be a list of strings",
        ),
        (
            'keywords = ["другое"]',
            'keywords = ["другое", "..."]',
            "catalog: document_types[1] 'other': keyword '...' has no letters",
        ),
    ],
    ids=[
        "unknown-region-tz",
        "unknown-tz-choice",
        "unknown-center-tz",
        "unknown-required-document",
        "required-and-optional",
        "duplicate-region-code",
        "duplicate-document-code",
        "missing-field",
        "wrong-type",
        "unknown-field",
        "region-without-tz",
        "both-tz-forms",
        "several-zones-without-labels",
        "alias-clash",
        "bad-code",
        "keywords-not-a-list",
        "empty-keyword",
    ],
)
def test_broken_entry_is_named(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert broken(tmp_path, replaced(old, new)).startswith(expected)


def test_center_without_disease_groups(tmp_path: Path) -> None:
    text = replaced('[[centers.disease_groups]]\ncode = "first"\n', "")
    text = replaced('name_ru = "Первая группа"\nname_en = "First group"\n', "", text)
    assert broken(tmp_path, text) == (
        "catalog: centers[0] 'alpha': has no disease groups (add [[centers.disease_groups]] tables)"
    )


def test_group_requiring_a_document_the_center_does_not_take(tmp_path: Path) -> None:
    text = replaced(
        'name_en = "First group"', 'name_en = "First group"\nrequired_documents = ["x"]'
    )
    assert broken(tmp_path, text).startswith(
        "catalog: centers[0] 'alpha': disease_groups[0] 'first': required document 'x' is not "
        "among the center's"
    )


def test_missing_section(tmp_path: Path) -> None:
    text = MINIMAL[: MINIMAL.index("[[regions]]")]
    assert broken(tmp_path, text) == "catalog: top level: no [[regions]] entries"


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    text = replaced('short_name_en = "Alpha"', "short_name_en = Alpha")
    message = broken(tmp_path, text)
    assert "TOML syntax error" in message
    assert "catalog.toml" in message
    assert "line 4" in message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path / "missing.toml")
    message = str(caught.value)
    assert message.startswith("catalog: cannot read ")
    assert "missing.toml" in message
    assert "\n" not in message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_bytes(MINIMAL.encode("cp1251"))
    with pytest.raises(CatalogError, match="not UTF-8"):
        load_catalog(path)


def test_bundled_file_with_an_unknown_document_names_the_center(tmp_path: Path) -> None:
    bundled = default_catalog_path().read_text(encoding="utf-8")
    text = replaced(
        'required_documents = ["discharge", "pelvic_us"]',
        'required_documents = ["discharge", "ultrasound"]',
        bundled,
    )
    assert broken(tmp_path, text) == (
        "catalog: centers[1] 'kulakov': required document 'ultrasound' is not a known document type"
    )


def test_bundled_file_with_a_duplicate_region_code(tmp_path: Path) -> None:
    bundled = default_catalog_path().read_text(encoding="utf-8")
    text = replaced("code = 95\n", "code = 94\n", bundled)
    assert broken(tmp_path, text) == (
        "catalog: regions[88] 94 'Херсонская область': duplicate region code 94 "
        "(also regions[87] 94 'Луганская Народная Республика')"
    )
