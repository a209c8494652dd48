"""Splitting a newspaper page dump into articles (qa.ingest.newspaper.split_page).

The seed page shows every layout problem at once; the synthetic pages use other words and
other layouts to show the mechanisms are general, not fitted to the seed.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from qa.ingest.newspaper import split_page
from qa.ingest.parsed import ParsedArticle

SEED = Path(__file__).resolve().parent.parent / "data" / "articles" / "000_8ab3799defe30f2f.txt"

_FIELDS = ("title", "subtitle", "byline", "column", "date")


def _page(*lines: str) -> str:
    """A page as the dumps have it: one block of text per line, blank lines between."""
    return "\n\n".join(lines) + "\n"


def _by_title(articles: list[ParsedArticle], title: str) -> ParsedArticle:
    found = [a for a in articles if a.title == title]
    assert len(found) == 1, [a.title for a in articles]
    return found[0]


def _chars(text: str) -> Counter:
    return Counter(re.sub(r"\s", "", text))


def _output_chars(articles: list[ParsedArticle]) -> Counter:
    total = Counter()
    for a in articles:
        for name in _FIELDS:
            total += _chars(getattr(a, name))
        for p in a.paragraphs:
            total += _chars(p)
    return total


def _assert_nothing_lost(text: str, articles: list[ParsedArticle], dropped: list[str] = ()) -> None:
    """Every non-blank line is reachable in some field, whole or as the pieces split off it;
    no character is lost or invented (only the exact duplicates in `dropped` go)."""
    expected = _chars(text)
    for line in dropped:
        expected -= _chars(line)
    assert _output_chars(articles) == expected

    squash = lambda s: re.sub(r"\s", "", s)  # noqa: E731
    bodies = [squash(v) for a in articles for v in (a.title, a.subtitle, a.column, *a.paragraphs) if v]
    # Any run of consecutive byline tokens may have come off one line (「本报讯(记者 张三)」).
    credits = set()
    for a in articles:
        tokens = a.byline.split()
        credits |= {"".join(tokens[i:j]) for i in range(len(tokens)) for j in range(i + 1, len(tokens) + 1)}
    bylines = [squash(a.byline) for a in articles if a.byline]
    for raw in text.splitlines():
        line = squash(raw)
        if not line or any(line in b for b in bylines):
            continue
        # Strip what went to a byline (本报讯…, （张三 李四）, 张三 摄) from either end.
        changed = True
        while changed:
            changed = False
            for c in sorted(credits, key=lambda c: (-len(c), c)):
                if line.startswith(c) and len(c) < len(line):
                    line, changed = line[len(c) :], True
                if line.endswith(c) and len(c) < len(line):
                    line, changed = line[: -len(c)], True
        assert any(line in b for b in bodies), raw


# --- the seed page ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_text() -> str:
    return SEED.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def seed(seed_text) -> list[ParsedArticle]:
    return split_page(seed_text)


def test_seed_articles_in_page_order(seed):
    assert [(a.title, a.kind) for a in seed] == [
        ("党旗飘扬引领创新", "article"),
        ("同心助同城", "article"),
        ("强化激励 量化标准", "article"),
        ("架实党群「连心桥」", "article"),
        ("建言中医药企业发展", "photo"),
        ("传好“接力棒” 让群众共享发展成果", "article"),
        ("", "fragment"),
        ("江西萍乡市安源区政协建言企业发展", "article"),
    ]


def test_seed_henan_title_block_finds_its_scattered_body(seed):
    a = _by_title(seed, "党旗飘扬引领创新")
    assert a.subtitle == "——河南省政协系统党的建设工作经验交流会小记"
    assert a.byline == "陈明丽 本报记者 王有强"
    assert len(a.paragraphs) == 7
    # The two paragraphs cut by column breaks are joined, each to the right continuation.
    [first] = [p for p in a.paragraphs if p.startswith("如何创新工作思路举措")]
    assert "工作中的薄弱环节和不足之处，即是创新的着力点。" in first
    [second] = [p for p in a.paragraphs if p.startswith("“平顶山市政协以功能性党支部为抓手")]
    assert "常态化开展走访、宣讲和调研活动，并把功能性党支部" in second
    assert not any(p.startswith(("不足之处", "和调研活动")) for p in a.paragraphs)
    for start in ("回望是为了更好地前行", "展的重要保障", "“漯河市源汇区", "会上，河南省政协", "“濮阳市政协"):
        assert sum(p.startswith(start) for p in a.paragraphs) == 1, start


def test_seed_suzhou(seed):
    a = _by_title(seed, "同心助同城")
    assert a.subtitle == "——江苏苏州市政协助力沪苏同城化记事"
    assert a.byline == "本报记者 江迪 通讯员 毛恒臻"
    assert len(a.paragraphs) == 13
    assert a.paragraphs[0].startswith("“上海、苏州均为信息化")
    assert a.paragraphs[-1].endswith("苏州市政协主席周伟强表示。")


def test_seed_loudi_kicker_opener_and_closing_authors(seed):
    a = _by_title(seed, "强化激励 量化标准")
    assert a.subtitle == "湖南娄底市政协研究推动界别工作"
    assert "本报讯" in a.byline and "刘洋 杨红" in a.byline
    assert len(a.paragraphs) == 5
    assert a.paragraphs[0].startswith("“要让政协界别成为团结群众")
    assert a.paragraphs[-1].endswith("市政协委员学习联络委主任彭祖尧说。")


def test_seed_yichang_title_printed_after_its_body(seed):
    a = _by_title(seed, "架实党群「连心桥」")
    assert a.subtitle == "——湖北宜昌市政协搭建「委员e家」界别协商平台小记"
    assert a.byline == "通讯员 李兰林 何新华 易玮玮 本报记者 毛丽萍"
    assert a.paragraphs[0].startswith("近日，在湖北省宜昌市城东体育公园山顶")
    assert a.paragraphs[-1].startswith("“委员e家”既关注大事")
    assert len(a.paragraphs) == 12


def test_seed_photo_caption(seed):
    a = _by_title(seed, "建言中医药企业发展")
    assert a.kind == "photo"
    assert a.byline == "王世平 摄"
    assert len(a.paragraphs) == 1
    assert a.paragraphs[0].startswith("近日，重庆市南川区政协")
    assert a.paragraphs[0].endswith("因为调研组在企业了解情况。")


def test_seed_hanzhong_opener_and_duplicate(seed):
    a = _by_title(seed, "传好“接力棒” 让群众共享发展成果")
    assert a.subtitle == "汉中市政协常委会会议聚焦巩固脱贫攻坚成果与乡村振兴有效衔接"
    assert a.byline == "本报讯(记者 路强 通讯员 李林蔚)"
    assert a.paragraphs[0].startswith("10月14日，陕西省汉中市政协")
    assert sum("宋毅" in p for art in seed for p in art.paragraphs) == 1
    assert a.paragraphs[-1].startswith("“农村看病就医费用逐年上涨")


def test_seed_fengnan_fragment(seed):
    [a] = [a for a in seed if a.kind == "fragment"]
    assert a.title == a.subtitle == a.byline == ""
    assert a.paragraphs[0] == "门对接，加快了申报省级“专精特新”中小企业进度。"
    assert len(a.paragraphs) == 5
    assert all("丰南区政协" in p for p in a.paragraphs[1:])


def test_seed_anyuan_column_and_joined_paragraph(seed):
    a = _by_title(seed, "江西萍乡市安源区政协建言企业发展")
    assert a.column == "政协工作动态"
    assert "本报讯" in a.byline and "钟尧 王磊" in a.byline
    assert len(a.paragraphs) == 1
    assert "听取企业当前的运营情况和下一步发展思路，仔细询问企业在发展过程中遇到的问题" in a.paragraphs[0]


def test_seed_nothing_lost(seed_text, seed):
    duplicate = "“农村看病就医费用逐年上涨，低收入群体看病就医支出压力依然很大。”市政协委员、市医保局局长宋毅建议"
    [dup_line] = [ln for ln in seed_text.splitlines() if ln.startswith(duplicate)][:1]
    _assert_nothing_lost(seed_text, seed, dropped=[dup_line])


def test_seed_deterministic(seed_text, seed):
    assert split_page(seed_text) == seed


# --- synthetic pages: the same mechanisms with other words ------------------------------------

ORCHARD_TITLE = ("果园迎来丰收季", "——北山县发展特色苹果产业见闻", "本报记者 赵晓")
ORCHARD_1 = "北山县的苹果园里，果农们正忙着采摘。今年全县苹果种植面积达到五万亩，苹果产量比去年增长两成，特色产业迎来丰收。"
ORCHARD_2_CUT = "为了提高苹果品质，北山县邀请农业专家开展技术培训，组织果农到外地果园参观学习，向果农推广"
ORCHARD_2_REST = "矮化密植和有机肥替代化肥技术，帮助果农提高苹果产量和品质，果农增收明显。"
ORCHARD_3 = "“过去靠天吃饭，现在靠技术增收。”果农李大伯说，今年他家的苹果卖上了好价钱。"
LIBRARY = (
    "图书馆夜间开放受欢迎",
    "本报讯 近日，东湖区图书馆试行夜间开放，每晚延长服务至二十二时，吸引大批读者前来借阅图书。",
    "据介绍，夜间开放期间，图书馆增设自习座位三百个，并开通自助借还服务，读者可以随时借阅。",
    "“下班后也能来图书馆看书，非常方便。”读者王女士说。（孙丽 周强）",
)
CANTEEN = (
    "社区食堂解决老人吃饭难",
    "本报讯 西湖街道社区食堂日前正式开业，为辖区六十岁以上老人提供午餐和晚餐，每餐收费十元。",
    "食堂由街道引入专业餐饮企业运营，菜品每天更换，兼顾老人口味和营养需求。",
    "“饭菜软烂可口，价格也实惠。”家住附近的张大爷说。（吴敏）",
)


def test_displaced_title_block_and_cut_paragraph_continued_elsewhere():
    # The orchard title block stands above another title block; its body comes after the
    # library article, and its second paragraph continues after the canteen article.
    text = _page(*ORCHARD_TITLE, *LIBRARY, ORCHARD_1, ORCHARD_2_CUT, *CANTEEN, ORCHARD_2_REST, ORCHARD_3)
    articles = split_page(text)
    assert [a.title for a in articles] == ["果园迎来丰收季", "图书馆夜间开放受欢迎", "社区食堂解决老人吃饭难"]
    orchard = articles[0]
    assert orchard.subtitle == "——北山县发展特色苹果产业见闻"
    assert orchard.byline == "本报记者 赵晓"
    assert orchard.paragraphs == [ORCHARD_1, ORCHARD_2_CUT + ORCHARD_2_REST, ORCHARD_3]
    library = articles[1]
    assert library.byline == "本报讯 （孙丽 周强）"
    assert library.paragraphs[0].startswith("近日，东湖区图书馆")
    assert library.paragraphs[-1] == "“下班后也能来图书馆看书，非常方便。”读者王女士说。"
    assert articles[2].paragraphs[-1].endswith("张大爷说。")
    _assert_nothing_lost(text, articles)


def test_title_block_printed_after_its_body_and_column_with_kicker():
    walk_1 = "今年夏天，南湖水库周边新建的环湖步道全线贯通，步道全长十二公里，沿途设置了八处观景平台。"
    walk_2 = "每到傍晚，不少市民来到环湖步道散步、骑行，欣赏南湖水库的落日景色，休闲又多了一个好去处。"
    text = _page(
        walk_1,
        walk_2,
        "城市速递",
        "老旧小区加装电梯提速",
        "五十部电梯年底前投用",
        "本报讯 记者从市住建局获悉，今年全市计划为老旧小区加装电梯五十部，目前已有三十部完成安装。",
        "住建部门简化加装电梯审批流程，并对每部电梯给予十五万元补贴，居民加装电梯的积极性明显提高。",
        "南湖环湖步道贯通",
        "——市民休闲又添好去处",
        "本报记者 钱进",
    )
    articles = split_page(text)
    assert [(a.title, a.kind) for a in articles] == [("南湖环湖步道贯通", "article"), ("五十部电梯年底前投用", "article")]
    walk, lift = articles
    assert walk.paragraphs == [walk_1, walk_2]
    assert walk.subtitle == "——市民休闲又添好去处" and walk.byline == "本报记者 钱进"
    assert lift.column == "城市速递"
    assert lift.subtitle == "老旧小区加装电梯提速"
    assert lift.byline == "本报讯"
    assert len(lift.paragraphs) == 2
    _assert_nothing_lost(text, articles)


def test_photo_caption_and_fragment_without_title():
    caption = "新建的幼儿园教室宽敞明亮，孩子们在老师带领下做游戏。"
    text = _page(
        "幼儿园开学",
        caption + "李明 摄",
        "河道整治见成效",
        "本报讯 经过一年整治，清水河河道淤泥全部清除，两岸新建护坡八公里，河水重新变得清澈。",
        "整治后的清水河成为市民休闲的好去处，河边步道上散步的人越来越多。",
        "馆进行了全面改造，新增展厅两个，展出文物三百余件，免费向公众开放。",
        "改造后的博物馆开放首周接待观众一万余人次，博物馆还推出了文物修复体验课程。",
    )
    articles = split_page(text)
    assert [(a.title, a.kind) for a in articles] == [
        ("幼儿园开学", "photo"),
        ("河道整治见成效", "article"),
        ("", "fragment"),
    ]
    photo, river, museum = articles
    assert photo.paragraphs == [caption] and photo.byline == "李明 摄"
    assert len(river.paragraphs) == 2
    assert museum.paragraphs[0].startswith("馆进行了全面改造") and len(museum.paragraphs) == 2
    _assert_nothing_lost(text, articles)


def test_duplicate_paragraph_dropped_once():
    para = "据统计，全县今年新建农村公路一百二十公里，惠及沿线群众五万余人。"
    text = _page("农村公路建设提速", "本报讯 县交通局加快推进农村公路建设，各项工程进展顺利。", para, para)
    [a] = split_page(text)
    assert a.paragraphs == ["县交通局加快推进农村公路建设，各项工程进展顺利。", para]
    _assert_nothing_lost(text, [a], dropped=[para])


def test_plain_single_article_with_section_headings():
    paras = [
        "记者日前从市教育局获悉，今年全市新建改建中小学十二所，新增学位一万余个。",
        "这些学校均按照新标准建设，配备了现代化的教学设施。",
        "一、优化学校布局",
        "教育部门根据人口变化调整学校布局，优先在新建小区配套建设学校。",
        "提升办学质量",  # an unnumbered section heading: still the same article
        "学校加强师资培训，今年共培训教师三千余人次。",
        "“孩子在家门口就能上好学校。”一位家长说。",
    ]
    text = "全市新增学位一万余个\n" + "\n".join(paras) + "\n"
    [a] = split_page(text)
    assert (a.title, a.kind) == ("全市新增学位一万余个", "article")
    assert a.paragraphs == paras


def test_cut_paragraph_continued_right_below():
    cut = "本报讯 市气象台昨日发布寒潮预警。预计未来三天全市气温将下降八至十摄氏度，气象台提醒市民"
    rest = "关注寒潮预警信息，注意防寒保暖，农户做好大棚蔬菜的防寒措施。"
    last = "据气象台介绍，这次寒潮影响范围广，降温幅度大，部分地区还将出现降雪。"
    [a] = split_page(_page("寒潮来袭气温骤降", cut, rest, last))
    assert a.byline == "本报讯"
    assert a.paragraphs == [cut.removeprefix("本报讯 ") + rest, last]


def test_cut_paragraph_without_evidence_stays_in_place():
    # No shared words and no mid-sentence start: not joined (a wrong join would pull another
    # article in), but nothing moves either.
    cut = "市气象台昨日发布寒潮预警，预计未来三天全市气温将下降八至十摄氏度，气象部门提醒市民"
    rest = "注意防寒保暖，出行时关注道路结冰情况，农户做好大棚蔬菜的防寒措施。"
    [a] = split_page(_page("寒潮来袭气温骤降", cut, rest))
    assert a.paragraphs == [cut, rest]


def test_hard_wrapped_text_is_unwrapped():
    paragraphs = [
        "记者日前从市教育局获悉，今年全市新建改建中小学十二所，新增学位一万余个，有效缓解了城区学校的入学压力。",
        "这些学校均按照新标准建设，配备了现代化的教学设施，部分学校还建设了室内体育馆和科技创新实验室。",
    ]
    wrapped = [p[i : i + 16] for p in paragraphs for i in range(0, len(p), 16)]
    [a] = split_page("全市新增学位一万余个\n\n" + "\n".join(wrapped) + "\n")
    assert a.title == "全市新增学位一万余个"
    assert a.paragraphs == paragraphs


def test_paragraphs_only_make_one_fragment():
    paras = [
        "春耕时节，田间地头一派忙碌景象，农机手驾驶拖拉机来回翻耕土地。",
        "门前的空地上，村民们正在晾晒种子，准备播种。",
        "农技人员深入田间，为农户讲解科学施肥技术。",
    ]
    [a] = split_page("\n\n".join(paras))
    assert (a.title, a.kind) == ("", "fragment")
    assert a.paragraphs == paras


@pytest.mark.parametrize("text", ["", "   ", "\n\n \t\n", "\u3000\n"])
def test_empty_page(text):
    assert split_page(text) == []
