"""Countries from names, variants, cities, leaders and demonyms."""

from __future__ import annotations

import pytest

from services.classify.places import countries


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("Violence spread from Osh to Jalalabad.", "KG"),
        ("Fighting in Misrata and Benghazi continued.", "LY"),
        ("Shelling hit El Fasher overnight.", "SD"),
        ("M23 rebels advanced on Goma.", "CD"),
        ("Gunmen attacked a church in Bangui.", "CF"),
        ("Troops deployed in Côte d’Ivoire.", "CI"),
        ("Refugees reached Burma's border.", "MM"),
        ("The Syrian army shelled the town.", "SY"),
        ("Gbagbo's forces fired on marchers.", "CI"),
    ],
)
def test_first_country(text: str, first: str) -> None:
    assert countries(text)[0] == first


def test_most_cited_first() -> None:
    text = "Kyrgyzstan asked Russia for help. Kyrgyzstan's army is overrun in Osh."
    assert countries(text)[:2] == ["KG", "RU"]


def test_a_states_own_forces_outweigh_the_victims_nationalities() -> None:
    text = "Drones killed Sudanese, Nigerien and Chadian miners, and the Malian army struck again."
    assert countries(text)[0] == "ML"


def test_hint_leads_and_is_normalised() -> None:
    assert countries("Clashes in Osh.", hint=" uz ") == ["UZ", "KG"]


@pytest.mark.parametrize(
    "text",
    [
        "Mobs attacked ethnic Uzbeks in Osh.",
        "Armed men terrorised Uzbek communities in Osh.",
        "Fighting between Kyrgyz and Uzbek groups in Osh.",
    ],
)
def test_ethnic_demonyms_make_no_country(text: str) -> None:
    assert "UZ" not in countries(text)


def test_lowercase_common_words_are_not_countries() -> None:
    assert countries("We ate turkey and chad was there; the car broke down.") == []


def test_title_counts_double() -> None:
    assert (
        countries("Russia sent envoys. Talks in Moscow.", title="Kyrgyzstan asks for help")[0]
        == "KG"
    )


def test_sponsor_is_not_the_place() -> None:
    text = "A U.S.-backed coalition airstrike hit a bus in Saada, Yemen."
    assert countries(text)[0] == "YE"


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("(Nairobi, May 9, 2024) – Attacks by the RSF in El Geneina killed hundreds.", "SD"),
        ("Geneva/Kinshasa – Fighting in Goma displaced thousands.", "CD"),
        ("Kigali, Rwanda – The president lit the flame of remembrance.", "RW"),
    ],
)
def test_a_dateline_is_where_the_story_was_filed(text: str, first: str) -> None:
    assert countries(text)[0] == first


def test_provinces_only_when_nothing_else_names_a_country() -> None:
    assert countries("Clashes in Lualaba province left 20 dead.") == ["CD"]
    assert countries("Clashes in Lualaba province, near Zambia, left 20 dead.") == ["ZM"]
    assert countries("Nothing happened in the Central region.") == []


def test_where_refugees_arrive_is_not_where_events_happen() -> None:
    text = "Thousands of Sudanese refugees crossed into Chad, arriving in Adré after attacks."
    assert countries(text)[0] == "SD"
    text = "Rohingya fled to Bangladesh and Cox’s Bazar after the army burned villages in Rakhine."
    assert countries(text)[0] == "MM"


def test_speakers_and_perpetrators_nationality_do_not_lead() -> None:
    text = "The US State Department said Russian forces killed civilians in Bucha, Ukraine."
    assert countries(text)[0] == "UA"
    text = "France’s UN ambassador said Mali asked for help after militants seized Konna."
    assert countries(text)[0] == "ML"


def test_where_attackers_come_from_is_not_where_the_attack_happens() -> None:
    text = (
        "An attack on two villages in south-eastern Chad, possibly carried out by Janjaweed "
        "militias from Sudan’s neighbouring Darfur region, forced 2,000 people to flee."
    )
    assert countries(text)[0] == "TD"
    assert countries("Gunmen attacked villages in Darfur, Sudan.")[0] == "SD"


def test_a_nigerian_state_named_after_a_country_is_nigeria() -> None:
    assert countries("Gunmen killed 21 villagers in Mokwa, Niger State.")[0] == "NG"
    assert countries("Jihadists killed 20 soldiers in western Niger.")[0] == "NE"


def test_people_fleeing_fighting_in_a_country_left_it() -> None:
    text = (
        "More than 50,000 people fled fighting in Mali's central region into Mauritania "
        "and Burkina Faso."
    )
    assert countries(text) == ["ML", "MR", "BF"]


def test_countries_condemning_from_abroad_do_not_lead() -> None:
    text = (
        "The United States and the European Union condemned the killing of 30 villagers by "
        "soldiers in the Nigerien region of Tillabéri."
    )
    assert countries(text)[0] == "NE"


def test_a_national_court_is_the_seat_of_a_trial() -> None:
    text = (
        "A German court sentenced a former Syrian officer to life for torture in Damascus, "
        "Syria. The judges found him guilty; prosecutors had asked for a life sentence."
    )
    assert countries(text, judicial=True)[0] == "DE"
    assert countries(text)[0] == "SY"


def test_a_town_qualified_by_its_district_belongs_to_the_district_s_country() -> None:
    # Gulu is a city in Uganda and a town in Nigeria's Niger State.
    text = "Bandits attacked the hospital in Gulu, Lapai Local Government Area of Niger State."
    assert countries(text)[0] == "NG"
    assert countries("Rebels shelled Gulu, Kampala and Juba.")[0] == "UG"  # a list, not a qualifier


def test_a_country_sending_troops_acts_where_it_sends_them() -> None:
    text = "Australia sends police and troops to Honiara as violent protests continue."
    assert countries(text)[0] == "SB"


def test_a_persons_nationality_is_not_where_events_happen() -> None:
    text = "Sudanese national Ibrahim appeared in court in Cardiff, Wales, charged with arson."
    assert "SD" not in countries(text)


def test_where_a_refugee_arrived_is_not_where_events_happen() -> None:
    text = (
        "The sultan made it safely to Chad. Following his arrival in Chad, he said militiamen "
        "were killing refugees fleeing El Geneina."
    )
    assert countries(text)[0] == "SD"


def test_an_armed_group_is_not_the_first_place_named() -> None:
    text = "Suspected Al-Shabaab militants beheaded a man in Marafa village in Lamu County."
    assert countries(text)[0] == "KE"
