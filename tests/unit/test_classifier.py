"""The classifier on the seed texts of issue 3, on context cues, and on the dev split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schemas.classification import Classification
from services.classify import evaluation, places, taxonomy
from services.classify.classifier import Classifier

SEEDS = Path(__file__).resolve().parents[1] / "data" / "seeds"


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier()


def _seed(classifier: Classifier, name: str) -> Classification:
    return classifier.classify((SEEDS / f"{name}.txt").read_text("utf-8"), report_id=name)


def _ids(result: Classification) -> set[str]:
    return {m.id for m in result.indicators}


def _assert_spans(text: str, result: Classification) -> None:
    for match in result.indicators:
        assert match.evidence, match.id
        for ev in match.evidence:
            assert text[ev.start : ev.end] == ev.text


def test_kyrgyzstan_open_statement(classifier: Classifier) -> None:
    result = _seed(classifier, "kyrgyzstan-open-statement-2010")
    assert {
        "state_incapacity_or_request_for_help",
        "ethnic_or_religious_targeting",
        "mass_displacement",
    } <= _ids(result)
    assert result.countries[0] == "KG"
    assert "UZ" not in result.countries[:1]
    assert result.severity == 3
    assert (result.casualties.killed, result.casualties.injured, result.casualties.displaced) == (
        170,
        2000,
        275000,
    )
    assert result.id == "kyrgyzstan-open-statement-2010"
    _assert_spans((SEEDS / "kyrgyzstan-open-statement-2010.txt").read_text("utf-8"), result)


def test_icg_libya(classifier: Classifier) -> None:
    result = _seed(classifier, "icg-libya-2011-02-22")
    assert {"aerial_attack", "attack_on_civilians_by_state_forces"} <= _ids(result)
    assert result.countries[0] == "LY"
    assert result.severity == 3
    _assert_spans((SEEDS / "icg-libya-2011-02-22.txt").read_text("utf-8"), result)


@pytest.mark.parametrize(
    "name",
    ["stanley-foundation-2011-04", "gapw-state-dept-2011", "allies-against-atrocities-2017"],
)
def test_policy_pieces_stay_below_warning(classifier: Classifier, name: str) -> None:
    assert _seed(classifier, name).severity < 2


def test_country_hint_leads(classifier: Classifier) -> None:
    result = classifier.classify("Troops fired on protesters in Benghazi.", country_hint="eg")
    assert result.countries == ["EG", "LY"]


def test_ethnic_demonym_alone_makes_no_country(classifier: Classifier) -> None:
    result = classifier.classify("Mobs attacked ethnic Uzbeks in Osh, killing 30 civilians.")
    assert result.countries == ["KG"]


@pytest.mark.parametrize(
    "text",
    [
        "Police denied that officers fired on protesters in Tripoli.",
        "There were no reports of civilians killed in the clashes.",
        "Twenty years ago, soldiers massacred hundreds of villagers; survivors gathered "
        "on the anniversary to remember them.",
        "The striker's attacking display killed off the match as the league leaders scored twice.",
        "Analysts warned that militias could attack civilians if the talks fail.",
        "The earthquake killed 300 people and left 10,000 displaced.",
        "He suffered a heart attack and died.",
        "The army said an airstrike killed 30 militants at a rebel camp near Idlib.",
        "Two soldiers were killed when rebels attacked a checkpoint.",
        "Liverpool massacred Arsenal 5-1 as the striker scored a hat-trick.",
        "The documentary depicts soldiers massacring villagers.",
        "Police shot dead a suspected robber, police said.",
        "Paratroopers practised live fire during a NATO exercise in Norway.",
        "The tribunal found the commander guilty of the killing of civilians; judges said so.",
        "Analysts said the board rejected the hostile takeover bid.",
        "The Oscar-winning film follows a Tutsi family hiding from militias during the genocide.",
        "Critics praised the novel, which recounts the massacre of villagers by soldiers.",
        "Prosecutors told the tribunal the militia leader had ordered the rape of women.",
        "The minister came under fire from the opposition over the budget.",
        "Heavy floods displaced more than 100,000 people in Bangladesh this week.",
        "A bus crash killed 30 passengers on the highway, police said.",
        "The Responsibility to Protect obliges states to protect populations from genocide, "
        "war crimes and ethnic cleansing.",
        "Experts warned that the country could slide into ethnic violence if the vote is disputed.",
        "Voters queued peacefully at polling stations across the country on Sunday.",
        "Troops took part in a live-fire exercise with attack helicopters near the border.",
        "The museum exhibition documents the Khmer Rouge killings of the 1970s.",
        "The cholera outbreak has killed 300 people and displaced families are at risk.",
        "No one was killed when the militia attacked the empty police post.",
        "In his speech, the president called for unity and an end to hate speech.",
        "Thousands of Syrian refugees in Germany have found work, helped by integration courses.",
        "Police foiled a plot to attack a synagogue, arresting three men.",
        "Malaria killed 400 children in the region last year, health officials said.",
        "In the Game of Thrones episode, soldiers massacre the guests at the Red Wedding.",
        "More than 10,000 refugees returned home to the province this month, the UNHCR said.",
        "Thousands gathered in Potocari to bury the remains of victims killed by Bosnian Serb "
        "forces, as families wept over the coffins.",
        "Survivors lit candles in Kigali as Rwanda began a week of mourning for the more than "
        "800,000 people slaughtered by Hutu extremists.",
        "The court heard that soldiers under his command raped women and killed civilians in "
        "2003; the defendant denies the charges.",
        "Floods and landslides hit the hills. Police searched for 85 people after rivers burst "
        "their banks and killed at least 75, police said.",
        "State police have arrested two men in the fatal shooting of an officer on Thursday.",
        "Families will remember the victims buried at the memorial. Among them, 2,500 were "
        "killed by militiamen. The ceremony opens with a walk to remember.",
        '"We\'re going to have to start killing these people," the radio host said.',
        "A thematic issue on the Council's agenda, the debate addresses the needs of vulnerable "
        "populations including refugees and internally displaced persons.",
        "Established in 1993, the radio called for exterminating the cockroaches and broadcast "
        "lists of people to be hunted down and killed.",
        "Militants stormed an army base overnight, killing 20 soldiers and wounding 15 others.",
        "In the new expansion, players lead an army that can massacre entire villages.",
        "The documentary, which premiered at Cannes, shows how the militia raped women.",
        "The training course taught journalists how to report on ethnic cleansing.",
        "The witness testified that soldiers had shot the men of the village in a ravine.",
        "He survived the massacre at the church as a boy, hiding under the bodies of neighbours.",
        "The annual report documents a global rise in mass arrests of protesters worldwide.",
        "The government declared a state of emergency after protests turned violent, and the "
        "army was deployed in the streets of the capital.",
        "The rebels signed a peace accord ending a war in which 200,000 people were killed.",
        "Forensic teams said 7,000 bodies from the mass graves have been identified and buried "
        "in the memorial cemetery.",
        "In her debut book, the author follows families through a war in which civilians were "
        "killed every day.",
        "The driver lost control of the vehicle and the bus plunged into a ravine, killing 27.",
        "The hospital was hit by ransomware; cyberattacks like this attack disrupt patient care.",
        "The programme paid 5,000 civilian victims of war, of whom 1,200 were victims of sexual "
        "violence and 800 war widows.",
        "Severe flooding has struck the southern state. Floods have claimed the lives of 151 "
        "people. The rains forced half a million residents to flee their homes.",
        "Heavy rainfall caused two dams to burst. Officials estimate that over 6,000 people "
        "have died, and tens of thousands of people have been displaced.",
        "A man accused of knifing a student to death and attempting to kill seven other people "
        "in a stabbing rampage has been remanded in custody today.",
        "A group of Syrian refugees living in the town is already sponsoring a family of eight "
        "from their homeland.",
        "The Early Warning Project has produced a global risk assessment every year since 2014. "
        "Since then, we have seen mass atrocities occur, including a genocide against the "
        "Rohingya in Burma, the killing of hundreds of thousands of civilians in South Sudan "
        "and targeted killings in Ethiopia. Early warning is not prompting early action.",
        "The militia stormed the camp in September 1982. The families of the victims say some "
        "2000 Palestinian and Lebanese civilians were slaughtered by militiamen.",
        "Thousands gathered at the hill to remember them, a decade since dozens of striking "
        "workers were killed by police.",
        "Following the launch on Monday of an urgent United Nations appeal for emergency "
        "international assistance, Australia will provide a further $10 million in "
        "humanitarian assistance to meet the critical needs of civilians.",
        "On 16 November IOM, with government authorities, carried out the first organized "
        "return of Internally Displaced Persons (IDPs) from a displaced centre in the western "
        "town of Duékoué to surrounding villages.",
        "The militia commander turned army chief has died in hospital, officials said.",
        "The police officer said robbers barged into the shop, shot the shopkeeper dead and "
        "looted cash.",
        "A powerful storm slammed into the coast, tearing roofs off buildings and killing at "
        "least three people.",
        "A councillor was on Sunday apprehended on hate speech allegations. He was detained "
        "for allegedly committing the offence of ethnic contempt, contrary to Section 62(1).",
        "A gunman who acted alone opened fire in a busy shopping mall. The eight people slain "
        "included three children. The mass shooting ended when police shot the suspect.",
        "Almost 250,000 people have had to flee their homes after a river flooded the town.",
        "Voting in 2017 follows fears of a repeat of the 2007 violence which left more than "
        "1,000 people dead. On Monday the former US president urged Kenyans to hold a peaceful "
        "election, adding that leaders must “reject violence and incitement; respect the will "
        "of the people”.",
        "Today survivors gathered with candles and wreaths to remember the victims of the "
        "massacre twenty years ago.",
        "On Sunday, mourners lit candles at the memorial to the victims of the massacre.",
        "Tigrayans in the UK demonstrated in London against the genocide taking place in Tigray. "
        "Eritrean opposition parties joined the protest to show their solidarity. Demonstrators "
        "carried placards and banners with slogans: stop the war, stop raping our women.",
        "Around 1,000 people marched in Brussels on Saturday in support of the people of North "
        "Kivu, under siege by the M23 rebel group. The crowd gathered at the square, holding "
        "signs reading “Stop genocide in Congo” and “We are killed for our riches”.",
    ],
)
def test_context_cues_keep_reports_silent(classifier: Classifier, text: str) -> None:
    assert classifier.classify(text).severity < 2


EVENTS = [
    (
        "state_incapacity_or_request_for_help",
        'Troops were sent after the minister said the government "could not control the '
        "situation\", in the worst violence since the country's independence in 1999.",
    ),
    (
        "ethnic_or_religious_targeting",
        "On Monday the militia shelled the camp and targeted residents on ethnic grounds.",
    ),
    (
        "incitement_hate_speech",
        "As clashes spread, anti-Muslim speeches by the monk circulated among armed mobs.",
    ),
    ("aerial_attack", "Government helicopters strafed the market in Aleppo, killing 40 civilians."),
    ("attack_on_civilians_by_state_forces", "Soldiers opened fire on demonstrators on Monday."),
    ("sexual_violence", "Militiamen raped dozens of women in the village, witnesses said."),
    ("arbitrary_detention_or_disappearance", "Security forces rounded up hundreds of activists."),
    ("humanitarian_access_denied", "Armed men blocked aid convoys and looted food supplies."),
    ("incitement_hate_speech", "A radio host called for the extermination of Tutsi cockroaches."),
    ("killing_of_civilians", "Gunmen stormed a village and killed 40 people, residents said."),
    ("armed_group_mobilisation", "Fighters set fire to homes and shot villagers as they fled."),
    ("aerial_attack", "A drone strike hit a wedding party, killing 20 guests."),
    ("mass_displacement", "Villages were burned and their Rohingya inhabitants driven out."),
    (
        "state_incapacity_or_request_for_help",
        "The president asked neighbouring countries to send troops.",
    ),
    (
        "state_incapacity_or_request_for_help",
        "The government said it had lost control of the north.",
    ),
    ("killing_of_civilians", "Witnesses saw soldiers rounding up men and executing them."),
    (
        "arbitrary_detention_or_disappearance",
        "Armed groups abducted 300 schoolgirls from a school.",
    ),
    (
        "arbitrary_detention_or_disappearance",
        "Hundreds disappeared after being detained by police.",
    ),
    ("incitement_hate_speech", "Radio stations broadcast messages urging listeners to kill Hutus."),
    ("killing_of_civilians", "Members of the ruling party's youth league killed 17 villagers."),
    ("killing_of_civilians", "Gunmen attacked a village. The death toll rose to 50, medics said."),
    ("killing_of_civilians", "Gunmen left 30 dead in the market town."),
    ("killing_of_civilians", "Hundreds of corpses line the road to the border, witnesses said."),
    (
        "killing_of_civilians",
        "Of the 18 dead, 13 were men and 5 were women who were going about their lives when "
        "men armed with machetes and axes hacked them to death.",
    ),
    (
        "attack_on_civilians_by_state_forces",
        "Floods and landslides hit the region. Police opened fire on villagers queuing for "
        "food and killed 12, witnesses said.",
    ),
    (
        "killing_of_civilians",
        "Militiamen killed 20 villagers in North Kivu on Monday, witnesses said. Some of them "
        "took part in the 1994 genocide.",
    ),
    ("attack_on_civilians_by_state_forces", "A demonstrator was shot dead by police on Monday."),
    (
        "state_incapacity_or_request_for_help",
        "The council's president wrote to the Secretary-General asking that the current mission "
        "be transformed into an official U.N. peacekeeping mission.",
    ),
    (
        "attack_on_civilians_by_state_forces",
        "On Monday a police contingent used teargas to stop the advance of a group of "
        "demonstrators.",
    ),
    (
        "humanitarian_access_denied",
        "Armenian authorities accused Azerbaijan of denying transport of over 400 tons of "
        "humanitarian aid into the region.",
    ),
    (
        "state_incapacity_or_request_for_help",
        "“It’s a total collapse of the security forces,” said a colonel as militants took "
        "control of the city.",
    ),
    (
        "killing_of_civilians",
        "The opposition put the death toll at hundreds. The government responded to the "
        "protests with force, deploying military and police units.",
    ),
    (
        "attack_on_civilians_by_state_forces",
        "Security forces tortured opposition activists held in secret prisons, witnesses said.",
    ),
    (
        # a funeral or vigil for the victims of a massacre dated to now reports the massacre
        "killing_of_civilians",
        "The government imposed a state of siege on two communities on Monday after a massacre "
        "at the weekend that left 13 dead. The victims were buried after a vigil with candles "
        "and flowers, and mourners laid wreaths beside the coffins.",
    ),
    (
        "armed_group_mobilisation",
        "Five children were injured yesterday in shelling carried out by the Houthis on a "
        "residential neighbourhood.",
    ),
]


@pytest.mark.parametrize(("indicator", "text"), EVENTS)
def test_indicators_fire_on_events(classifier: Classifier, text: str, indicator: str) -> None:
    result = classifier.classify(text)
    assert indicator in _ids(result)
    # Arrests without violence against civilians are a risk factor: watch, not warning.
    assert result.severity >= (1 if indicator == "arbitrary_detention_or_disappearance" else 2)
    _assert_spans(text, result)


def test_same_result_each_time(classifier: Classifier) -> None:
    text = (SEEDS / "icg-libya-2011-02-22.txt").read_text("utf-8")
    assert classifier.classify(text) == Classifier().classify(text)


DEV_FLOORS = {
    "alert_recall": 0.94,
    "negatives_silent": 0.95,
    "alert_f1": 0.95,
    "indicator_micro_f1": 0.80,
    "country_accuracy": 0.87,
}
"""What the rules score on dev now, rounded down: a change that loses ground fails here.
(The targets are judged on held-out by ``make eval``; dev is harder since its second round
of deliberately difficult records, and its figures fell with the sixth to ninth rounds'
records: countries hard to tell, the alert line, ordinary days' feeds, plain reports.)"""


def test_dev_split_holds_its_scores(classifier: Classifier) -> None:
    """Regression guard on the split we tune on (held-out is only reported, by make eval)."""
    reports = evaluation.load("dev")
    scores = evaluation.score(
        reports, lambda r: classifier.classify(r.text, report_id=r.id, title=r.title)
    ).summary()
    for key, floor in DEV_FLOORS.items():
        assert scores[key] >= floor, (key, scores[key])


@pytest.mark.parametrize("name", sorted(p.stem for p in SEEDS.glob("*.txt")))
def test_countries_from_the_one_pass_match_the_gazetteer(classifier: Classifier, name: str) -> None:
    """The classifier finds place names in its own scan; places.py's regex must agree."""
    text = (SEEDS / f"{name}.txt").read_text("utf-8")
    assert classifier.classify(text).countries == places.countries(text)


def test_a_year_before_2000_is_history(classifier: Classifier) -> None:
    text = "In 1994, Hutu extremists killed 800,000 Tutsi civilians in a hundred days."
    result = classifier.classify(text)
    assert result.severity < 2
    assert result.casualties.killed is None


def test_a_number_phrase_broken_across_lines_is_read(classifier: Classifier) -> None:
    text = "Militias attacked the camp and killed tens of\nthousands of civilians, witnesses said."
    assert classifier.classify(text).casualties.killed == 10_000


def test_offsets_survive_letters_whose_lowercase_is_longer(classifier: Classifier) -> None:
    text = "İSTANBUL’DA ÇATIŞMA. Soldiers killed 5 civilians in Aleppo, witnesses said."
    result = classifier.classify(text)
    assert result.severity >= 2
    _assert_spans(text, result)


def test_empty_and_long_reports(classifier: Classifier) -> None:
    assert classifier.classify("").severity == 0
    long_text = (SEEDS / "icg-libya-2011-02-22.txt").read_text("utf-8") * 40  # ~80 KB
    result = classifier.classify(long_text)
    assert result.severity == 3
    _assert_spans(long_text, result)


@pytest.mark.parametrize(
    "text",
    [
        "The ceasefire collapsed and 30 civilians were killed by shelling, residents said.",
        "Gunmen attacked a concert hall, killing 89 people.",
        "She told the story of how soldiers killed her family in the village last week.",
        "Mourners buried 40 victims of Sunday's massacre as families paid tribute.",
        "It was the worst massacre of civilians in the country's history, witnesses said.",
        "Militias killed 30 civilians at the UN protection of civilians site in Malakal.",
        "Security forces shot dead 20 protesters demanding independence from the country.",
        "Mourners carried the coffins of 12 protesters shot dead by police on Monday.",
        # protests that are themselves attacked, or that report a massacre, still alert
        "Thousands marched through the capital chanting slogans against the junta. Soldiers "
        "opened fire on the crowd, killing 12.",
        "Demonstrators staged a sit-in outside parliament, holding placards. Police fired tear "
        "gas and live rounds, killing three protesters.",
        "Protesters marched in the city in solidarity with the victims. Gunmen attacked the "
        "march, killing five people.",
        "Thousands marched in protest against the massacre of 50 villagers by soldiers on "
        "Sunday, chanting slogans.",
        "Protesters holding placards were shot dead by police as they marched in the capital.",
    ],
)
def test_look_alike_cues_do_not_silence_events(classifier: Classifier, text: str) -> None:
    assert classifier.classify(text).severity >= 2


def test_taxonomy_errors_name_the_bad_key() -> None:
    good: dict[str, Any] = {
        "concepts": {"kill": ["kill(ed|)"]},
        "cues": {},
        "indicators": [
            {"id": "x", "severity": 2, "risk_factors": [11], "rules": [{"slots": ["kill"]}]}
        ],
    }
    assert taxonomy.parse(good).ids == ("x",)
    assert taxonomy.expand("kill(ed|ing|) (them|)") == [
        "killed them", "killed", "killing them", "killing", "kill them", "kill"
    ]  # fmt: skip
    bad_concept = {**good, "indicators": [{**good["indicators"][0], "rules": [{"slots": ["x"]}]}]}
    with pytest.raises(taxonomy.TaxonomyError, match=r"indicators\.x\.rules\[0\]"):
        taxonomy.parse(bad_concept)
    bad_factor = {**good, "indicators": [{**good["indicators"][0], "risk_factors": [15]}]}
    with pytest.raises(taxonomy.TaxonomyError, match=r"indicators\.x\.risk_factors"):
        taxonomy.parse(bad_factor)
    assert set(taxonomy.INDICATOR_IDS) >= {"killing_of_civilians", "aerial_attack"}


def test_hate_speech_is_watch_until_a_crisis(classifier: Classifier) -> None:
    calm = "A politician called the minority community cockroaches at a rally."
    crisis = "During the clashes, a politician called the minority community cockroaches."
    assert classifier.classify(calm).severity == 1
    assert classifier.classify(crisis).severity == 3
    assert {m.id for m in classifier.classify(calm).indicators} == {"incitement_hate_speech"}


def test_a_toll_of_fighters_is_no_civilian_toll(classifier: Classifier) -> None:
    result = classifier.classify("Rebels attacked the base, killing 20 soldiers, the army said.")
    assert "killing_of_civilians" not in _ids(result)
    assert result.casualties.killed is None
    mixed = classifier.classify("The attack killed 12 soldiers and 30 civilians in the market.")
    assert "killing_of_civilians" in _ids(mixed)


def test_militias_armed_with_machetes_are_mobilising_not_attacking(classifier: Classifier) -> None:
    result = classifier.classify(
        "Militiamen armed with machetes and spears gathered in the hills above the town, "
        "residents said."
    )
    assert _ids(result) == {"armed_group_mobilisation"}
    assert result.severity == 1


def test_an_aid_agency_quoted_is_a_source_not_a_target(classifier: Classifier) -> None:
    text = "At least 800 people were slaughtered in the town, the Red Cross said on Friday."
    result = classifier.classify(text)
    assert "killing_of_civilians" in _ids(result)
    assert "humanitarian_access_denied" not in _ids(result)


def test_peacekeepers_killed_are_an_attack_on_the_mission_not_on_civilians(
    classifier: Classifier,
) -> None:
    text = "Three UN peacekeepers were killed on Tuesday when rebels attacked their convoy."
    result = classifier.classify(text)
    assert "humanitarian_access_denied" in _ids(result)
    assert "killing_of_civilians" not in _ids(result)
