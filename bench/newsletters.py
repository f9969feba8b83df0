"""HTML newsletters as marketing mail sends them, in four scripts, for `scan_message.py`.

The SMTP benchmark's kinds are synthetic (`X` lines, random text): they do not exercise what
most HTML mail costs the scanner. These are ~90-100 KB table layouts with inline styles,
images floated right (their `alt` text in the page's language), buttons and links: English,
Russian, Chinese, and Hebrew written right to left (`dir=rtl`). Deterministic per seed.
"""

from __future__ import annotations

import base64
import random

_TEXTS = {
    "English": "hello news sale today customers dear discount special now site buy free "
    "shipping all country products new store",
    "Russian": "привет новости скидка сегодня клиенты дорогие распродажа особый сейчас сайт "
    "купить бесплатно доставка все страна товары новые магазин",
    "Chinese": "你好 新闻 促销 今天 客户 亲爱的 折扣 特别 现在 网站 购买 免费 送货 全国 产品 "
    "新的 商店",
    "Hebrew": "שלום חדשות מבצע היום לקוחות יקרים הנחה מיוחדת עכשיו באתר קנו חינם משלוח לכל "
    "הארץ מוצרים חדשים בחנות",
}
WORDS = {language: text.split() for language, text in _TEXTS.items()}


def newsletter(language: str, seed: int = 7, items: int = 120) -> bytes:
    """The page (UTF-8 HTML) of a newsletter in `language` (a key of `WORDS`)."""
    rng = random.Random(seed)
    words = WORDS[language]
    rtl = language == "Hebrew"
    side = "left" if rtl else "right"
    d = ' dir="rtl"' if rtl else ""

    def say(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    rows = [
        f'<tr><td style="padding:10px;text-align:{"right" if rtl else "left"};font-family:Arial;'
        f'font-size:14px;color:#333"{d}><img src="https://cdn.example.com/p{i}.jpg" '
        f'alt="{say(3)}" width="120" style="display:block;float:{side};margin-left:10px">'
        f'<h3 style="margin:0;color:#c00">{say(4)}</h3><p style="margin:4px 0">{say(25)}</p>'
        f'<a href="https://shop.example.com/item/{i}?utm=news" style="background:#c00;'
        f'color:#fff;padding:6px 12px;text-decoration:none">{say(2)}</a></td></tr>'
        for i in range(items)
    ]
    head = "body{direction:rtl;margin:0}" if rtl else "body{margin:0}"
    page = (
        f'<!doctype html><html{d} lang="{language[:2].lower()}"><head><meta charset="utf-8">'
        f"<style>{head}.wrap{{width:600px;margin:0 auto}}td{{vertical-align:top}}</style>"
        f'</head><body{d}><div class="wrap"><table width="600" cellpadding="0" '
        f'cellspacing="0" role="presentation">{"".join(rows)}</table></div></body></html>'
    )
    return page.encode()


def newsletter_mail(language: str, seed: int = 7) -> bytes:
    """`newsletter` as a CRLF mail: one text/html part in base64, as senders send them."""
    b64 = base64.encodebytes(newsletter(language, seed)).decode()
    text = (
        "From: <news@shop.example.com>\nTo: <rcpt@example.com>\nSubject: news\n"
        "MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n"
        f"Content-Transfer-Encoding: base64\n\n{b64}"
    )
    return text.replace("\n", "\r\n").encode()
