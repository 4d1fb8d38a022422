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
]  # fmt: skip


def kuaimod_taxonomy() -> list[dict[str, Any]]:
    return [
        {
            "key": major,
            "name": major_en,
            "tags": [{"key": tag, "name": tag_en, "keywords": list(keywords)} for tag, tag_en, keywords in tags],
        }
        for major, major_en, tags in _TAXONOMY
    ]


# BLM-Guard's three levels for advertising: risk scene -> violation type -> severity. Scenes and
# violation types share the JSON shape above (scene = major, violation type = tag); each violation
# type lists the severities it may take and the rubric criteria a model scores it by.
BLM_GUARD_SAFE_LABEL = SAFE_LABEL

_BLM_TAXONOMY: list[tuple[str, str, list[tuple[str, str, list[str], list[str], list[str]]]]] = [
    ("虚假宣传", "False advertising", [
        ("夸大功效", "Exaggerated efficacy claims",
         ["根治", "神药", "包治百病", "百分百有效", "立竿见影", "cures everything", "guaranteed results", "100% effective", "miracle"],
         ["The ad claims an effect the product cannot be shown to have (cure, guaranteed result, instant change).",
          "High when the claim concerns health, medicine or safety; medium for other absolute claims; low for mild puffery."],
         ["low", "medium", "high"]),
        ("虚假资质", "Fake credentials or endorsements",
         ["官方认证", "专家推荐", "国家认证", "医生推荐", "doctor recommended", "officially certified", "celebrity endorsed"],
         ["The ad shows or states a certification, expert or celebrity endorsement that is not substantiated.",
          "High when a medical or government authority is impersonated."],
         ["medium", "high"]),
        ("虚构价格", "Fictitious prices and fake discounts",
         ["原价", "跳楼价", "亏本甩卖", "全网最低", "original price", "lowest price ever", "fake discount"],
         ["The ad compares against a reference price that never applied or claims an unverifiable lowest price."],
         ["low", "medium"]),
    ]),
    ("诱导交易", "Inducement to trade", [
        ("站外引流", "Off-platform traffic diversion",
         ["加微信", "vx", "加我", "私信", "wechat", "whatsapp", "telegram", "link in bio", "contact me", "off the platform"],
         ["Viewers are steered to a contact or shop outside the platform (handles, QR codes, coded words for messaging apps)."],
         ["medium", "high"]),
        ("私下交易", "Private deals bypassing buyer protection",
         ["私下交易", "转账", "不走平台", "pay me directly", "bank transfer", "private deal", "outside the app"],
         ["Payment or delivery is arranged outside the platform's checkout, removing buyer protection.",
          "High when money is requested up front."],
         ["medium", "high"]),
        ("诱饵福利", "Bait rewards and fake giveaways",
         ["免费领", "转发抽奖", "点赞领取", "0元购", "free gift", "giveaway", "free iphone"],
         ["A reward is promised for engagement or purchase that is not delivered or has hidden conditions."],
         ["low", "medium", "high"]),
    ]),
    ("低俗擦边", "Vulgar borderline content", [
        ("性暗示", "Sexual innuendo",
         ["性感", "诱惑", "撩人", "擦边", "sexy", "seductive", "hot girls"],
         ["Suggestive poses, close-ups or wording used to attract attention to an unrelated product.",
          "Low for mild suggestion; high when nudity or sexual acts are implied."],
         ["low", "medium", "high"]),
        ("软色情引流", "Soft-porn traffic bait",
         ["福利视频", "私密照", "看完整版", "约吗", "private photos", "full version", "adult content"],
         ["Promises of sexual content used to drive clicks, follows or off-platform contact."],
         ["medium", "high"]),
        ("低俗言语", "Vulgar language",
         ["骚气", "下流", "dirty talk", "vulgar"],
         ["Crude or sexualised language in voice-over, captions or on-screen text."],
         ["low", "medium"]),
    ]),
]  # fmt: skip


def blm_guard_taxonomy() -> list[dict[str, Any]]:
    return [
        {
            "key": scene,
            "name": scene_en,
            "tags": [
                {
                    "key": key,
                    "name": name,
                    "keywords": list(keywords),
                    "criteria": list(criteria),
                    "severities": list(severities),
                }
                for key, name, keywords, criteria, severities in violations
            ],
        }
        for scene, scene_en, violations in _BLM_TAXONOMY
    ]
