"""The first policy: KuaiMod's taxonomy (major category -> fine tag), with English names.

Risk keywords (Chinese and English) drive the evidence baseline and keyframe scoring; policy
teams edit them as new versions.
"""

from __future__ import annotations

from typing import Any

SAFE_LABEL = "正向"

_TAXONOMY: list[tuple[str, str, list[tuple[str, str, list[str]]]]] = [
    ("法律与社会安全", "Law & social safety", [
        ("违法犯罪", "Criminal behaviour", ["诈骗", "赌博", "毒品", "洗钱", "fraud", "gambling", "drugs", "money laundering", "scam"]),
        ("涉政不当言行", "Improper political speech", ["反动", "颠覆", "subversion"]),
        ("辱骂、引战、宣扬仇恨", "Offensive speech, cyberbullying, hate", ["傻逼", "滚", "废物", "垃圾人", "idiot", "hate", "loser", "stupid"]),
        ("出售违禁品", "Hazardous / prohibited goods trafficking", ["枪支", "管制刀具", "违禁品", "弹药", "guns for sale", "ammunition", "weapons for sale"]),
        ("历史虚无主义", "Historical nihilism", ["历史虚无", "篡改历史"]),
    ]),
    ("内容质量与伦理", "Content quality & ethics", [
        ("色情低俗", "Sexually explicit & vulgar", ["色情", "裸露", "约炮", "porn", "nude", "explicit"]),
        ("不实信息", "Rumours & misinformation", ["谣言", "震惊", "内部消息", "rumor", "fake news", "miracle cure"]),
        ("危害未成年人身心健康", "Harm to minors", ["虐童", "未成年人吸烟", "child abuse"]),
        ("未成年不适当行为", "Minors' dangerous / inappropriate acts", ["未成年饮酒", "小学生抽烟", "underage drinking"]),
    ]),
    ("商业行为与商品宣传", "Commercial behaviour", [
        ("夸大商品功效", "Exaggerated product claims", ["根治", "神药", "包治百病", "百分百有效", "cures everything", "guaranteed results", "100% effective"]),
        ("引导私下交易", "Steering users to private deals", ["加微信", "私聊", "私信", "vx", "加我", "wechat", "whatsapp", "telegram", "private deal", "message me privately", "direct message", "contact me", "outside the app", "off the platform"]),
        ("虚假承诺福利", "False promised benefits", ["免费领", "转发抽奖", "点赞领取", "free gift", "giveaway", "free iphone"]),
        ("炒作卖货", "Hype marketing", ["最后一天", "限时秒杀", "清仓", "last chance", "limited time", "flash sale"]),
    ]),
    ("知识产权与标识合规", "IP & labelling", [
        ("未添加AI标识", "Missing AI-generated label", ["ai生成", "ai换脸", "deepfake", "ai generated"]),
        ("盗用抄袭作品", "Unauthorised reproduction / plagiarism", ["搬运", "转载", "reupload", "reposted"]),
    ]),
]


def kuaimod_taxonomy() -> list[dict[str, Any]]:
    return [
        {
            "key": major,
            "name": major_en,
            "tags": [{"key": tag, "name": tag_en, "keywords": list(keywords)} for tag, tag_en, keywords in tags],
        }
        for major, major_en, tags in _TAXONOMY
    ]
