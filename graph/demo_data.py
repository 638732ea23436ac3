# ruff: noqa: RUF001, RUF003  (Russian words are meant to be Cyrillic)
"""Vocabularies of the demo retailer: names, cities and stores, products, texts.

Everything here is invented. Nothing in this module is personal data; the generator combines
these words into people whose personal data is then encrypted like any real customer's.
"""

from __future__ import annotations

from dataclasses import dataclass

RETAILER = "Северная Лавка"

MALE_NAMES = (
    "Александр", "Дмитрий", "Максим", "Сергей", "Андрей", "Алексей", "Артём", "Илья",
    "Кирилл", "Михаил", "Никита", "Иван", "Евгений", "Павел", "Роман", "Владимир", "Денис",
    "Олег", "Игорь", "Николай", "Антон", "Егор", "Тимур", "Руслан", "Фёдор", "Глеб",
)  # fmt: skip
FEMALE_NAMES = (
    "Анна", "Мария", "Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Екатерина", "Светлана",
    "Юлия", "Анастасия", "Дарья", "Ксения", "Виктория", "Полина", "Алина", "Марина", "Валерия",
    "Софья", "Елизавета", "Людмила", "Галина", "Алиса", "Вера", "Алёна", "Надежда",
)  # fmt: skip
# Male surname forms; the female form adds "а" (Иванов → Иванова).
SURNAMES = (
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов",
    "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров",
    "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев", "Макаров", "Никитин",
    "Захаров", "Зайцев", "Соловьёв", "Борисов", "Яковлев", "Григорьев", "Романов", "Воробьёв",
    "Сергеев", "Кузьмин", "Фролов", "Александров", "Дмитриев", "Королёв", "Гусев", "Киселёв",
    "Ильин", "Максимов", "Поляков", "Сорокин", "Виноградов", "Ковалёв", "Белов", "Медведев",
    "Антонов", "Тарасов", "Жуков", "Баранов", "Филиппов", "Комаров", "Давыдов", "Беляев",
)  # fmt: skip
# How people spell a name differently when they register a second time.
NAME_VARIANTS = {
    "Наталья": "Наталия", "Софья": "София", "Алёна": "Алена", "Артём": "Артем",
    "Фёдор": "Федор", "Дарья": "Дария", "Юлия": "Юля", "Александр": "Саша",
}  # fmt: skip

_TRANSLIT = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
}  # fmt: skip


def translit(text: str) -> str:
    """Lower-case Latin spelling of a Russian word, as people type it into e-mail addresses."""
    return "".join(_TRANSLIT.get(ch, ch) for ch in text.lower())


@dataclass(frozen=True, slots=True)
class City:
    name: str
    code: str
    stores: tuple[str, ...]  # shopping centres, one store each
    weight: float  # share of customers


CITIES = (
    City("Москва", "MSK", ("ТЦ Авиапарк", "ТЦ Европейский", "ТРЦ Мега Тёплый Стан",
                           "ТЦ Атриум"), 30),
    City("Санкт-Петербург", "SPB", ("ТРК Галерея", "ТЦ Мега Дыбенко", "ТРК Пулково"), 15),
    City("Казань", "KZN", ("ТРЦ Кольцо",), 5),
    City("Новосибирск", "NSK", ("ТРЦ Аура",), 5),
    City("Екатеринбург", "EKB", ("ТРЦ Гринвич",), 5),
    City("Нижний Новгород", "NNV", ("ТРЦ Фантастика",), 4),
    City("Самара", "SMR", ("ТРК Космопорт",), 4),
    City("Ростов-на-Дону", "ROV", ("ТРЦ Горизонт",), 4),
    City("Краснодар", "KRD", ("ТРЦ Галерея Краснодар",), 4),
    City("Воронеж", "VRN", ("ТРЦ Галерея Чижова",), 3),
    City("Пермь", "PRM", ("ТРК Планета",), 3),
    City("Уфа", "UFA", ("ТРЦ Планета",), 3),
    City("Челябинск", "CHE", ("ТРК Родник",), 3),
    City("Красноярск", "KJA", ("ТРЦ Планета Красноярск",), 3),
    City("Тюмень", "TJM", ("ТРЦ Кристалл",), 2),
)  # fmt: skip

STREETS = (
    "ул. Ленина", "ул. Гагарина", "ул. Мира", "пр. Победы", "ул. Советская", "ул. Садовая",
    "ул. Лесная", "ул. Школьная", "ул. Молодёжная", "ул. Пушкина", "ул. Кирова", "ул. Чехова",
    "ул. Строителей", "пр. Космонавтов", "ул. Октябрьская", "ул. Центральная", "ул. Набережная",
    "ул. Заводская", "ул. Полевая", "ул. Солнечная", "ул. Зелёная", "б-р Цветной",
)  # fmt: skip

ADDRESS = "г. {city}, {street}, д. {house}, кв. {flat}"

# Operator codes of Russian mobile numbers (+7 9xx).
MOBILE_PREFIXES = (
    "900", "901", "902", "903", "904", "905", "906", "908", "909", "910", "911", "912", "913",
    "915", "916", "917", "918", "919", "920", "921", "922", "925", "926", "927", "928", "929",
    "950", "951", "952", "953", "960", "961", "962", "963", "964", "965", "977", "985", "999",
)  # fmt: skip
EMAIL_DOMAINS = (
    ("yandex.ru", 30), ("mail.ru", 25), ("gmail.com", 25), ("bk.ru", 5), ("list.ru", 4),
    ("inbox.ru", 4), ("rambler.ru", 4), ("outlook.com", 3),
)  # fmt: skip
# Typos people make when they type their e-mail on a second registration.
EMAIL_TYPOS = {
    "gmail.com": ("gmial.com", "gmail.co", "gmai.com"),
    "yandex.ru": ("yadex.ru", "yandex.ry", "yandx.ru"),
    "mail.ru": ("mial.ru", "maill.ru", "mail.ry"),
    "bk.ru": ("bk.ry",),
    "list.ru": ("lsit.ru",),
    "inbox.ru": ("inbx.ru",),
    "rambler.ru": ("rambler.ry", "ramber.ru"),
    "outlook.com": ("outlok.com",),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Category:
    slug: str
    prefix: str
    skus: int
    min_rub: int
    max_rub: int
    return_rate: float
    # Demand by month (index 0 = January): school in September, gardens in spring, gifts in
    # December, flowers and cosmetics before 8 March.
    season: tuple[float, ...]


CATEGORIES = (
    Category("electronics", "EL", 30, 990, 49_990, 0.08,
             (0.8, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.9, 1.0, 1.0, 1.6, 2.0)),
    Category("appliances", "AP", 24, 1_490, 39_990, 0.06,
             (0.9, 0.9, 1.0, 1.0, 1.0, 0.9, 0.9, 0.9, 1.0, 1.0, 1.5, 1.6)),
    Category("kitchen", "KT", 30, 190, 5_990, 0.04,
             (0.9, 1.0, 1.1, 1.0, 1.0, 0.9, 0.9, 0.9, 1.0, 1.0, 1.2, 1.7)),
    Category("textiles", "TX", 24, 390, 7_990, 0.07,
             (1.0, 0.9, 1.0, 1.0, 0.9, 0.8, 0.8, 0.9, 1.1, 1.2, 1.3, 1.6)),
    Category("beauty", "BT", 30, 150, 3_990, 0.03,
             (0.9, 1.3, 2.6, 1.0, 0.9, 0.9, 0.9, 0.9, 1.0, 1.0, 1.2, 1.8)),
    Category("kids", "KD", 24, 290, 6_990, 0.05,
             (0.8, 0.8, 0.9, 0.9, 1.1, 1.2, 0.9, 1.4, 1.6, 0.9, 1.1, 2.2)),
    Category("sports", "SP", 20, 490, 19_990, 0.06,
             (1.3, 1.0, 1.0, 1.2, 1.3, 1.2, 1.0, 0.9, 1.0, 0.9, 1.1, 1.3)),
    Category("books", "BK", 30, 190, 1_490, 0.02,
             (1.0, 0.9, 0.9, 0.9, 0.9, 1.0, 1.0, 1.2, 1.3, 1.0, 1.0, 1.5)),
    Category("garden", "GD", 20, 190, 9_990, 0.04,
             (0.3, 0.4, 0.9, 2.2, 2.6, 2.0, 1.5, 1.1, 0.8, 0.5, 0.3, 0.4)),
    Category("pets", "PT", 16, 90, 3_490, 0.02,
             (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.2)),
)  # fmt: skip

CONTACT_TOPICS = (
    ("order_status", 25), ("delivery", 20), ("return_refund", 15), ("loyalty_points", 15),
    ("product_question", 12), ("complaint", 8), ("account_access", 5),
)  # fmt: skip
CHURN_TOPICS = ("complaint", "return_refund", "delivery")

# (month, code, name); the campaign goes out mid-month, by e-mail (WEB) or push (MOBILE_APP).
CAMPAIGNS = (
    (1, "winter-sale", "Январская распродажа"),
    (2, "feb-23", "23 февраля: подарки"),
    (3, "march-8", "8 марта: красота и цветы"),
    (4, "garden-season", "Дачный сезон"),
    (5, "may-holidays", "Майские праздники"),
    (6, "summer-deals", "Летние скидки"),
    (7, "summer-deals-2", "Летние скидки: вторая волна"),
    (8, "back-to-school", "Снова в школу"),
    (9, "autumn-home", "Уютная осень"),
    (10, "points-x2", "Двойные баллы"),
    (11, "black-friday", "Чёрная пятница"),
    (12, "new-year", "Новогодние подарки"),
)

REVIEWS_RU = {
    5: ("Отличный товар, всем рекомендую!", "Пользуюсь каждый день, очень доволен.",
        "Качество выше ожиданий, куплю ещё.", "Брала в подарок, все в восторге."),
    4: ("Хороший товар за свои деньги.", "В целом доволен, есть мелкие недочёты.",
        "Неплохо, но доставка могла быть быстрее."),
    3: ("Обычный товар, ничего особенного.", "Средне. Ожидал большего за такую цену."),
    2: ("Качество так себе, через месяц появились проблемы.", "Не соответствует описанию."),
    1: ("Сломался через неделю, пришлось вернуть.", "Не рекомендую, деньги на ветер."),
}  # fmt: skip
REVIEWS_EN = {
    5: ("Excellent, would buy again.", "Great quality for the price."),
    4: ("Good value, minor issues.", "Works well, packaging could be better."),
    3: ("It is okay, nothing special.",),
    2: ("Disappointing quality.",),
    1: ("Broke after a week, returned it.",),
}  # fmt: skip

BLOGGER_SUFFIXES = ("home", "style", "life", "family", "review", "blog", "tech", "garden")
