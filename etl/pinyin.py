"""Pinyin of Chinese names, for search by Latin letters and English labels.

:func:`search_keys` gives a name's full pinyin and its initials, lower case,
without tones or separators (``店子镇`` → ``dianzizhen``, ``dzz``), the forms
``/api/places`` matches a query against. :func:`query_key` turns what a
resident typed into the same form (Chinese characters become their pinyin,
so a homophone typo such as ``卫生是`` for ``卫生室`` still matches).
:func:`romanise` makes an English label from a Chinese place name
(``店子镇`` → ``Dianzi Town``). Pinyin comes from pypinyin's dictionaries.
"""
from __future__ import annotations

import re

from pypinyin import Style, lazy_pinyin

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_SEPARATORS = re.compile(r"[\s'’·\-_]+")
_NOT_KEY = re.compile(r"[^0-9a-z]+")

#: Name endings and their English words, longest first (an ending is matched before a shorter one inside it).
SUFFIXES_EN: tuple[tuple[str, str], ...] = (
    ("经济开发区", "Economic Development Zone"), ("街道", "Subdistrict"), ("村道", "Village Road"),
    ("公路", "Highway"), ("号路", "Road"), ("区", "District"), ("市", "City"), ("镇", "Town"), ("乡", "Township"),
    ("村", "Village"), ("路", "Road"), ("街", "Street"), ("河", "River"), ("桥", "Bridge"))
#: Chinese words with an English meaning used inside names (``（合成）`` marks synthetic demo data).
WORDS_EN: tuple[tuple[str, str], ...] = (("（合成）", " (synthetic)"), ("示例", "Example "), ("东西", " East-West "),
                                        ("南北", " North-South "), ("—", " – "))


def has_han(text: str) -> bool:
    """Whether ``text`` contains a Chinese character."""
    return bool(_HAN.search(text))


def search_keys(name: str) -> tuple[str, str]:
    """``(full pinyin, initials)`` of ``name``, lower case, no tones or separators.

    Latin letters and digits are kept (lower case), everything else is
    dropped, so ``示例村卫生室0001`` gives ``shilicunweishengshi0001`` and
    ``slcwss0001``.
    """
    full = "".join(lazy_pinyin(name)).lower()
    initials = "".join(s[0] if has_han(ch) else s
                       for s, ch in zip(lazy_pinyin(name, style=Style.FIRST_LETTER), _chunks(name), strict=False)
                       if s).lower()
    return _NOT_KEY.sub("", full), _NOT_KEY.sub("", initials)


def query_key(q: str) -> str:
    """What a resident typed, in the form of :func:`search_keys`' full pinyin (``"Wei sheng"`` → ``weisheng``)."""
    return _NOT_KEY.sub("", "".join(lazy_pinyin(q.strip())).lower())


def romanise(name: str) -> str:
    """An English label for a Chinese place name: pinyin words with the ending in English.

    ``店子镇`` → ``Dianzi Town``; ``光明路街道`` → ``Guangminglu Subdistrict``;
    a name without Chinese characters is returned unchanged.
    """
    if not has_han(name):
        return name
    text, ending = name, ""
    for zh, en in WORDS_EN[:1]:  # the synthetic mark comes last, after the ending
        if text.endswith(zh):
            text, ending = text[: -len(zh)], en
    suffix = ""
    for zh, en in SUFFIXES_EN:
        if text.endswith(zh) and len(text) > len(zh):
            text, suffix = text[: -len(zh)], en
            break
    for zh, en in WORDS_EN[1:]:
        text = text.replace(zh, en)
    words = [_word(part) for part in re.split(r"(\s+)", text) if part.strip()]
    return " ".join(w for w in [*words, suffix] if w) + ending


def _word(part: str) -> str:
    """One run of a name in pinyin, capitalised (``合成村2166`` → ``Hechengcun 2166``)."""
    pieces = re.findall(r"[\u3400-\u9fff\uf900-\ufaff]+|[^\u3400-\u9fff\uf900-\ufaff]+", part)
    out = ["".join(lazy_pinyin(p)).capitalize() if has_han(p) else p for p in pieces]
    return " ".join(o.strip() for o in out if o.strip())


def _chunks(name: str) -> list[str]:
    """``name`` cut as :func:`pypinyin.lazy_pinyin` cuts it: one item per Chinese character, runs of others."""
    return re.findall(r"[\u3400-\u9fff\uf900-\ufaff]|[^\u3400-\u9fff\uf900-\ufaff]+", name)
