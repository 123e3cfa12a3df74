"""The shipped config.toml's topic filter and tag taxonomy on real and written articles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.clean import clean_text
from monitor.config import load_settings
from monitor.rules import RuleSet

REPO = Path(__file__).resolve().parent.parent
RULES = RuleSet.from_settings(load_settings(REPO / "config.toml", environ={}))
FIXTURES = sorted((Path(__file__).parent / "fixtures" / "relevance").glob("*.json"))
SEED = clean_text((Path(__file__).parent / "fixtures" / "seed_repost.txt").read_text("utf-8"))[0]


def judge(title: str, text: str) -> tuple[bool, set[str]]:
    matches = RULES.match(title, text)
    return RULES.topic(matches).on_topic, {tag.name for tag in RULES.tags(matches)}


def test_the_seed_passes_and_gets_the_analysts_tags() -> None:
    on_topic, tags = judge("Cambodia, UN see eye-to-eye on combatting human trafficking", SEED)
    assert on_topic
    assert {"org:ncct", "org:un", "theme:policy-and-diplomacy", "theme:tip-report"} <= tags
    assert tags & {"theme:scam-compounds", "theme:online-fraud"}


@pytest.mark.parametrize("path", FIXTURES, ids=lambda path: path.stem)
def test_written_articles(path: Path) -> None:
    article = json.loads(path.read_text(encoding="utf-8"))
    on_topic, tags = judge(article["title"], article["text"])
    assert on_topic is article["expect_on_topic"]
    assert set(article["expect_tags"]) <= tags
    assert not set(article.get("unexpected_tags", ())) & tags


def test_every_corpus_story_is_on_topic() -> None:
    for path in sorted((REPO / "bench" / "corpus" / "stories").glob("*.json")):
        story = json.loads(path.read_text(encoding="utf-8"))
        on_topic, _ = judge(story["title"], "\n".join(story["paragraphs"]))
        assert on_topic, path.stem


def test_khmer_and_chinese_articles_are_matched_in_their_script() -> None:
    by_name = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in FIXTURES}
    for name in ("khmer-raid", "chinese-rescue"):
        article = by_name[name]
        assert article["language"] in ("km", "zh")
        on_topic, tags = judge(article["title"], article["text"])
        assert on_topic and "place:sihanoukville" in tags


# Excerpts of a second audit's articles, one per fix of the shipped rules: the title, the
# text, whether the topic filter keeps it, tags it must get and tags it must not get.
EXCERPTS = {
    "drugs-were-trafficked": (
        "Police seize 300 kilograms of methamphetamine in Stung Treng",
        "Investigators said the drugs were trafficked across the Mekong from southern Laos and"
        " were destined for Phnom Penh.",
        False,
        set(),
        set(),
    ),
    "pangolin-scales-being-trafficked": (
        "Angkor ticket sales rise 18 percent as tourism recovers",
        "Rangers in Siem Reap province confiscated 40 kilograms of pangolin scales that were"
        " being trafficked to Vietnam, the Forestry Administration said.",
        False,
        set(),
        set(),
    ),
    "timber-was-trafficked": (
        "Ivory shipment bound for Cambodia seized in Da Nang",
        "Customs officers seized 2.3 tonnes of ivory hidden in a shipment of timber from Nigeria"
        " that was trafficked through Cambodia's Sihanoukville port last year.",
        False,
        set(),
        set(),
    ),
    "wildlife-anti-trafficking-unit": (
        "Wildlife anti-trafficking unit seizes pangolins in Koh Kong",
        "The Wildlife Rapid Rescue Team, the Forestry Administration's anti-trafficking unit,"
        " seized 14 live pangolins from a car at a checkpoint in Koh Kong province.",
        False,
        set(),
        set(),
    ),
    "people-who-were-trafficked": (
        "Fourteen Cambodians return from Myanmar's Myawaddy",
        "Fourteen Cambodians who were trafficked to Myawaddy crossed back into the country"
        " through the Poipet international checkpoint on Tuesday.",
        True,
        {"place:poipet"},
        set(),
    ),
    "anti-trafficking-police": (
        "Women freed from Banteay Meanchey karaoke bars",
        "Anti-trafficking police in Banteay Meanchey freed forty women from karaoke parlours.",
        True,
        {"place:banteay-meanchey"},
        set(),
    ),
    "tuol-sleng-as-a-landmark": (
        "Tuol Kork raid frees 60 workers held in villa compound",
        "Police raided a walled villa compound in Tuol Kork district, a short walk from the Tuol"
        " Sleng Genocide Museum, and freed 60 workers forced to scam Americans. The NCCT said"
        " they would be screened as possible victims of human trafficking.",
        True,
        {"place:phnom-penh", "theme:rescue-and-raids"},
        set(),
    ),
    "tuol-sleng-museum-s21": (
        "Tuol Sleng marks 45 years since fall of Khmer Rouge regime",
        "Hundreds gathered at the Tuol Sleng Genocide Museum in Phnom Penh. The regime drove the"
        " population into forced labour; survivor Chum Mey, of the S-21 prison, spoke.",
        False,
        set(),
        set(),
    ),
    "guangxi-port-is-not-sihanoukville": (
        "广西警方破获一起跨境拐卖越南妇女案",
        "犯罪团伙将越南妇女骗至中国境内，卖给当地男子为妻。主要嫌疑人在广西港口城市北海落网。",
        False,
        set(),
        {"place:sihanoukville"},
    ),
    "xigang-police": (
        "西港警方捣毁一处电诈窝点",
        "西港警方对位于西港四号区一栋建筑进行突击检查，解救32名被骗至柬埔寨的中国籍人员。",
        True,
        {"place:sihanoukville"},
        set(),
    ),
    "traditional-arrived-in-phnom-penh": (
        "台灣青年遭「賣豬仔」至柬埔寨",
        "一名台灣青年經由網路求職廣告前往柬埔寨，抵達金邊後即被帶往詐騙園區。",
        True,
        {"place:phnom-penh"},
        set(),
    ),
    "gold-rimmed-glasses-at-home": (
        "警方破获一起拐卖儿童案",
        "一名戴金边眼镜的男子在火车站拐卖一名儿童，已被警方抓获。",
        False,
        set(),
        set(),
    ),
    "french-traite-des-etres-humains": (
        "Au Cambodge, les victimes de la traite des êtres humains réclament justice",
        "À Sihanoukville, d'anciens casinos ont été transformés en centres d'escroquerie.",
        True,
        {"place:sihanoukville", "theme:scam-compounds"},
        set(),
    ),
    "vietnamese-mua-ban-nguoi": (
        "Giải cứu 64 công dân Việt Nam bị lừa sang Campuchia",
        "Những người này bị ép làm việc cho các đường dây lừa đảo trực tuyến ở Bavet. Cơ quan"
        " chức năng đang điều tra các đối tượng có dấu hiệu mua bán người.",
        True,
        {"country:vietnam", "place:bavet", "theme:online-fraud"},
        set(),
    ),
    "vietnamese-thai-binh-is-not-thailand": (
        "Ba thanh niên Thái Bình bị lừa sang Campuchia",
        "Ba thanh niên quê Thái Bình bị bán cho một công ty lừa đảo trực tuyến ở Sihanoukville.",
        True,
        {"place:sihanoukville"},
        {"country:thailand"},
    ),
    "vietnamese-thai-lan-is-thailand": (
        "Giải cứu công dân Việt Nam ở Campuchia",
        "Các nạn nhân quê Thái Bình bị lừa sang Thái Lan rồi bị bán sang Campuchia để lừa đảo"
        " trực tuyến.",
        True,
        {"country:thailand"},
        set(),
    ),
    "thai-in-running-text": (
        "ช่วยเหลือคนไทย 27 คน ถูกหลอกไปทำงานแก๊งคอลเซ็นเตอร์ในกัมพูชา",
        "เจ้าหน้าที่ช่วยเหลือคนไทยที่เมืองปอยเปต กรมสอบสวนคดีพิเศษตรวจสอบว่าเป็นคดีค้ามนุษย์หรือไม่",
        True,
        {"country:thailand", "place:poipet", "theme:online-fraud"},
        set(),
    ),
    "korean-particles": (
        "한국인 대학생 숨져",
        "이 학생은 캄보디아로 출국했다가 캄폿주의 범죄단지에 감금됐다. 외교부는 인신매매 조직을"
        " 수사하고 있다.",
        True,
        {"country:south-korea", "place:kampot", "theme:scam-compounds"},
        set(),
    ),
    "indonesian-perdagangan-orang": (
        "Kemlu pulangkan 120 WNI dari Kamboja",
        "Kementerian Luar Negeri memulangkan 120 warga negara Indonesia korban penipuan daring."
        " Polri menyelidiki dugaan tindak pidana perdagangan orang.",
        True,
        {"country:indonesia", "theme:online-fraud", "theme:repatriation"},
        set(),
    ),
    "handed-over-to-a-court": (
        "Svay Rieng police arrest three over Bavet online scam",
        "The suspects were handed over to the Svay Rieng Provincial Court. Twenty-four workers"
        " found in the villa were taken to the provincial police compound for questioning about"
        " human trafficking.",
        True,
        {"place:bavet"},
        {"theme:repatriation", "theme:scam-compounds"},
    ),
    "handed-over-to-another-country": (
        "Nine Vietnamese women rescued from Phnom Penh karaoke parlour",
        "The women, victims of human trafficking, will be handed over to Vietnamese authorities.",
        True,
        {"theme:repatriation"},
        set(),
    ),
    "orphanage-children-returned-to-families": (
        "Siem Reap orphanage closed over child trafficking fears",
        "UNICEF said it was a case of orphanage trafficking. The children will be returned to"
        " their families after assessments.",
        True,
        {"theme:child-trafficking"},
        {"theme:repatriation"},
    ),
    "paoy-pet": (
        "Forty women rescued from Paoy Pet karaoke bars",
        "Police rescued forty women from karaoke parlours in Paoy Pet town; the owners were"
        " arrested on suspicion of sex trafficking.",
        True,
        {"place:poipet", "place:banteay-meanchey"},
        set(),
    ),
    "sold-as-brides": (
        "Phnom Penh court jails broker for trafficking women to China as brides",
        "The court sentenced a woman to 12 years in prison for selling three young women as"
        " brides to men in Jiangxi province, under the law on human trafficking.",
        True,
        {"theme:forced-marriage"},
        set(),
    ),
    "the-philippines-acts": (
        "Philippines shuts last licensed POGO scam hubs",
        "The Philippines on Monday shut down the last offshore gaming operators, citing human"
        " trafficking; some had relocated to Cambodia.",
        True,
        {"country:philippines"},
        set(),
    ),
}


@pytest.mark.parametrize("name", EXCERPTS)
def test_audited_excerpts(name: str) -> None:
    title, text, expect_on_topic, expected, unexpected = EXCERPTS[name]
    on_topic, tags = judge(title, text)
    assert on_topic is expect_on_topic
    assert expected <= tags
    assert not unexpected & tags


def test_thai_script_matches_inside_running_text() -> None:
    # Thai, like Khmer, is written without spaces between words: "คดีค้ามนุษย์" (a case of
    # human trafficking) holds the phrase ค้ามนุษย์.
    assert judge("คดีค้ามนุษย์ในกัมพูชา", "")[0]
