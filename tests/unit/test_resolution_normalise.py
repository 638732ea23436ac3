# ruff: noqa: RUF001  (Russian words are meant to be Cyrillic)
"""Matching forms of Russian customer data (graph.resolution.normalise), pure functions."""

import pytest

from graph.resolution.features import matching_record
from graph.resolution.model import blocking_values
from graph.resolution.normalise import (
    address_key,
    email_key,
    first_name_key,
    skeleton,
    surname_key,
)


@pytest.mark.parametrize(
    ("a", "b"),
    [("Иванов", "Ivanov"), ("Семёнов", "Semenov"), ("Юлия", "Yuliya"), ("Юлия", "Iulia"),
     ("Кузнецов", "Kuznetsov"), ("Харитонов", "Kharitonov"), ("Соловьёв", "Solovyov")],
)
def test_cyrillic_and_latin_spellings_meet(a, b):
    assert skeleton(a) == skeleton(b)


@pytest.mark.parametrize(
    ("variant", "passport"),
    [("Саша", "Александр"), ("Лёша", "Алексей"), ("Sasha", "Александр"), ("Наташа", "Наталья"),
     ("Alexander", "Александр"), ("Дима", "Дмитрий")],
)
def test_diminutives_become_the_passport_name(variant, passport):
    assert first_name_key(variant)[0] == first_name_key(passport)[0]


def test_patronymic_is_split_off():
    assert first_name_key("Иван Петрович") == ("ivan", "petrovich")


def test_surname_gender_forms_share_a_stem_and_differ_in_gender():
    male, female = surname_key("Иванов"), surname_key("Иванова")
    assert male.stem == female.stem and {male.gender, female.gender} == {"M", "F"}
    assert surname_key("Толстой").stem == surname_key("Толстая").stem


def test_email_dots_tags_and_domain_typos():
    assert email_key("Ivan.Petrov+shop@gmial.com") == email_key("ivanpetrov@gmail.com")
    assert email_key("a.b@yandex.ry") == "ab@yandex.ru"
    assert email_key("not-an-email") is None


def test_address_words_spelled_many_ways_are_dropped():
    assert address_key("г. Москва, ул. Ленина, д. 5, кв. 12") == address_key(
        "Москва улица Ленина дом 5 квартира 12"
    )


def test_blocking_values_need_every_column_of_a_rule():
    record = matching_record("1", first_name="Иван", last_name="Петров", birth_date=None,
                             address=None, phones=["+79161234567"])  # fmt: skip
    values = blocking_values(record)
    assert values["phone"] == "79161234567" and values["name"] == "petrov|ivan"
    assert "first_dob" not in values
