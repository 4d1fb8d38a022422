"""Synthetic KuaiMod-format lines: obvious private-deal ads vs. harmless cooking videos."""

from __future__ import annotations

import json
from pathlib import Path

PRIVATE_DEAL = [
    "加微信私聊，低价出货",
    "想要的加微信私聊详谈",
    "私聊我加微信领优惠",
    "便宜出，加微信私聊下单",
    "加V私聊，微信同号",
    "看主页加微信私聊购买",
    "私聊加微信，价格美丽",
    "需要的加微信私聊我",
    "微信私聊，便宜出",
    "加我微信私聊拿货",
    "私聊微信低价转让",
    "加微信私聊，包邮到家",
]
COOKING = [
    "今天教大家做红烧肉 #美食 #家常菜",
    "番茄炒蛋的家常做法 #美食",
    "清蒸鱼简单又好吃 #家常菜",
    "周末在家做蛋糕 #烘焙 #美食",
    "妈妈做的饺子最好吃 #家常菜",
    "十分钟学会炒青菜 #美食",
    "自制酸菜鱼 #家常菜 #美食",
    "红烧排骨的做法 #美食",
    "早餐煎饼果子 #美食 #早餐",
    "凉拌黄瓜夏天必备 #家常菜",
    "土豆炖牛肉 #美食 #家常菜",
    "蒸鸡蛋羹嫩滑 #美食",
]


def kuaimod_line(pid: str, tag: str, title: str, ocr: str = "", asr: str = "null") -> str:
    return json.dumps(
        {"pid": pid, "tag": tag, "title": title, "OCR": ocr, "ASR": asr, "images": [f"{pid}_0.jpg"]},
        ensure_ascii=False,
    )


def write_split(path: Path, *, start: int, take: slice) -> Path:
    lines = []
    pid = start
    for title in PRIVATE_DEAL[take]:
        lines.append(kuaimod_line(f"{pid:03d}", "引导私下交易", title, ocr="扫码加微信|私聊"))
        pid += 1
    for title in COOKING[take]:
        lines.append(kuaimod_line(f"{pid:03d}", "正向", title, ocr="家常做法|好吃"))
        pid += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
