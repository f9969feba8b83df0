"""Conformance: zerohour and Debian's clamscan give the same verdicts and names on the same db.

Each group is one database folder and a folder of samples (a positive and a negative sample per
feature); clamscan runs once per group. Every expected verdict is also written down, so a change
in either engine fails here. Where zerohour differs from ClamAV on purpose, the sample is listed
in `DIFFERS` with the reason (also in docs/scanning.md).
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conformance.samples import (
    binary,
    mail,
    make_elf,
    make_gzip,
    make_pe,
    make_tar,
    make_zip,
    mime,
    plain_mail,
)
from zerohour.scan import Engine, load_database

pytestmark = pytest.mark.needs_clamav

CLAMSCAN = shutil.which("clamscan")


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def sha1(b: bytes) -> str:
    return hashlib.sha1(b).hexdigest()


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def hx(b: bytes) -> str:
    return b.hex()


@dataclass
class Group:
    name: str
    db: dict[str, str]
    samples: dict[str, bytes]
    expect: dict[str, str | None]
    #: sample -> (clamscan's verdict, ours, why) where we differ on purpose.
    differs: dict[str, tuple[str | None, str | None, str]] = field(default_factory=dict)
    #: extra clamscan options (zerohour's defaults already alert on limits and encryption).
    clam_args: tuple[str, ...] = ()


# -- samples ---------------------------------------------------------------------------------

HA, HB, HC, HD, HE, HF, HG, HH = (binary(b"hash sample " + bytes([c]) * 40) for c in b"ABCDEFGH")

TEXT1 = b"\x90" * 16 + b"TEXTSECTIONMARK" + b"\xcc" * 32
DATA2 = b"DATASECTIONMARK" + b"\x11" * 40
PE1 = make_pe(TEXT1, b"plain data")
PE2 = make_pe(b"\x90\xc3 other code", DATA2)
PE3 = make_pe(b"\x90\xc3 third", b"third data")
TEXT1_RAW = PE1[0x200:0x400]
DATA2_RAW = PE2[0x400:0x600]

EP_BYTES = b"\x55\x8b\xec\x83\xec\x40EPMARK"
PE_EP = make_pe(b"\x90" * 32 + EP_BYTES, b"d", ep=32)
PE_EP_NEG = make_pe(b"\x90" * 32 + EP_BYTES, b"d", ep=0)
PE_S1 = make_pe(b"code", b"\x00\x00\x00\x00SECT1MARK")
PE_S1_NEG = make_pe(b"code", b"\x00\x00\x00\x00\x00SECT1MARK")
PE_TARGET = make_pe(b"\x90PEONLYMARK\xc3", b"d")


def _groups() -> list[Group]:
    return [
        Group(
            "hashes",
            {
                "a.hdb": "\n".join([
                    f"{md5(HA)}:{len(HA)}:Hash.Md5.Size",
                    f"{md5(HB)}:*:Hash.Md5.Any:73",
                    f"{md5(HG)}:{len(HG) + 1}:Hash.Md5.WrongSize",
                ]),
                "b.hsb": "\n".join([
                    f"{md5(HF)}:{len(HF)}:Hash.Hsb.Md5",
                    f"{sha1(HH)}:*:Hash.Sha1.Any:73",
                    f"{sha1(HC)}:{len(HC)}:Hash.Sha1.Size",
                    f"{sha256(HD)}:{len(HD)}:Hash.Sha256.Size",
                    f"{sha256(HE)}:*:Hash.Sha256.Any:73",
                ]),
            },
            {"a": HA, "a_longer": HA + b"x", "b": HB, "c": HC, "d": HD, "e": HE, "g": HG,
             "f": HF, "h": HH, "clean": binary(b"nothing")},
            {"a": "Hash.Md5.Size", "a_longer": None, "b": "Hash.Md5.Any", "c": "Hash.Sha1.Size",
             "d": "Hash.Sha256.Size", "e": "Hash.Sha256.Any", "g": None, "f": "Hash.Hsb.Md5",
             "h": "Hash.Sha1.Any", "clean": None},
        ),
        Group(
            "pe-sections",
            {
                "s.mdb": f"{len(TEXT1_RAW)}:{md5(TEXT1_RAW)}:Sect.Md5",
                "s.msb": f"{len(DATA2_RAW)}:{sha256(DATA2_RAW)}:Sect.Sha256:73",
            },
            {"pe1": PE1, "pe2": PE2, "pe3": PE3, "raw_section": binary(TEXT1_RAW)},
            {"pe1": "Sect.Md5", "pe2": "Sect.Sha256", "pe3": None, "raw_section": None},
        ),
        Group(
            "ndb-wildcards",
            {"w.ndb": "\n".join([
                "W.Any:0:*:41414141??42424242",
                "W.NibHi:0:*:43434343a?44444444",
                "W.NibLo:0:*:45454545?a46464646",
                "W.Star:0:*:474747474747*4848484848",
                "W.Exact:0:*:49494949{3}4a4a4a4a",
                "W.Upto:0:*:4b4b4b4b{-3}4c4c4c4c",
                "W.Atleast:0:*:4d4d4d4d{3-}4e4e4e4e",
                "W.Range:0:*:4f4f4f4f{2-4}50505050",
                "W.Alt:0:*:51515151(61|62)52525252",
                "W.NegAlt:0:*:53535353!(61|62)54545454",
                "W.AltMulti:0:*:55555555(6162|6364)56565656",
            ])},
            {
                "any_pos": binary(b"AAAA\x00BBBB"), "any_neg": binary(b"AAAABBBB"),
                "nibhi_pos": binary(b"CCCC\xa7DDDD"), "nibhi_neg": binary(b"CCCC\xb7DDDD"),
                "niblo_pos": binary(b"EEEE\x3aFFFF"), "niblo_neg": binary(b"EEEE\x3bFFFF"),
                "star_pos": binary(b"GGGGGG" + b"." * 300 + b"HHHHH"),
                "star_neg": binary(b"HHHHH" + b"." * 30 + b"GGGGGG"),
                "exact_pos": binary(b"IIII123JJJJ"), "exact_neg": binary(b"IIII1234JJJJ"),
                "upto_pos": binary(b"KKKK12LLLL"), "upto_neg": binary(b"KKKK1234LLLL"),
                "atleast_pos": binary(b"MMMM12345NNNN"), "atleast_neg": binary(b"MMMM12NNNN"),
                "range_pos": binary(b"OOOO123PPPP"), "range_neg": binary(b"OOOO12345PPPP"),
                "alt_pos": binary(b"QQQQbRRRR"), "alt_neg": binary(b"QQQQcRRRR"),
                "negalt_pos": binary(b"SSSScTTTT"), "negalt_neg": binary(b"SSSSaTTTT"),
                "altmulti_pos": binary(b"UUUUcdVVVV"), "altmulti_neg": binary(b"UUUUacVVVV"),
            },
            {
                "any_pos": "W.Any", "any_neg": None, "nibhi_pos": "W.NibHi", "nibhi_neg": None,
                "niblo_pos": "W.NibLo", "niblo_neg": None, "star_pos": "W.Star",
                "star_neg": None, "exact_pos": "W.Exact", "exact_neg": None,
                "upto_pos": "W.Upto", "upto_neg": None, "atleast_pos": "W.Atleast",
                "atleast_neg": None, "range_pos": "W.Range", "range_neg": None,
                "alt_pos": "W.Alt", "alt_neg": None, "negalt_pos": "W.NegAlt",
                "negalt_neg": None, "altmulti_pos": "W.AltMulti", "altmulti_neg": None,
            },
        ),
        Group(
            "ndb-offsets",
            {"o.ndb": "\n".join([
                "O.Abs:0:0:5a5a5a5a5a5a",
                "O.AbsRange:0:30,5:5959595959",
                "O.Eof:0:EOF-8:5858585858585858",
                f"O.EP:1:EP+0:{hx(EP_BYTES)}",
                f"O.Sect:1:S1+4:{hx(b'SECT1MARK')}",
            ])},
            {
                "abs_pos": b"ZZZZZZ" + binary(b"x"), "abs_neg": b"-ZZZZZZ" + binary(b"x"),
                "range_pos": b"\x00" * 32 + b"YYYYY" + binary(b""),
                "range_neg": b"\x00" * 40 + b"YYYYY" + binary(b""),
                "eof_pos": binary(b"") + b"XXXXXXXX", "eof_neg": binary(b"") + b"XXXXXXXX!",
                "ep_pos": PE_EP, "ep_neg": PE_EP_NEG, "sect_pos": PE_S1, "sect_neg": PE_S1_NEG,
            },
            {
                "abs_pos": "O.Abs", "abs_neg": None, "range_pos": "O.AbsRange",
                "range_neg": None, "eof_pos": "O.Eof", "eof_neg": None, "ep_pos": "O.EP",
                "ep_neg": None, "sect_pos": "O.Sect", "sect_neg": None,
            },
        ),
        Group(
            "ndb-targets",
            {"t.ndb": "\n".join([
                f"T.PE:1:*:{hx(b'PEONLYMARK')}",
                f"T.ELF:6:*:{hx(b'ELFONLYMARK')}",
                f"T.Mail:4:*:{hx(b'MAILONLYMARK')}",
                f"T.Text:7:*:{hx(b'hello evil world')}",
                f"T.Ole:2:*:{hx(b'OLEMARK123')}",
            ])},
            {
                "pe_pos": PE_TARGET, "pe_neg": binary(b"PEONLYMARK"),
                "elf_pos": make_elf(b"\x00" * 64 + b"ELFONLYMARK" + b"\x00" * 64),
                "elf_neg": binary(b"ELFONLYMARK"),
                "mail_pos": plain_mail("nothing", subject="MAILONLYMARK"),
                "mail_neg": binary(b"MAILONLYMARK"),
                "text_pos": b"Some text.\nHello   EVIL\n\tWorld, it said.\n",
                "text_neg": binary(b"hello evil world"),
                "ole_pos": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + b"OLEMARK123"
                + bytes(1000),
                "ole_neg": binary(b"OLEMARK123"),
            },
            {
                "pe_pos": "T.PE", "pe_neg": None, "elf_pos": "T.ELF", "elf_neg": None,
                "mail_pos": "T.Mail", "mail_neg": None, "text_pos": "T.Text",
                "text_neg": None, "ole_pos": "T.Ole", "ole_neg": None,
            },
        ),
        Group(
            "ldb",
            {"l.ldb": "\n".join([
                f"L.And;Engine:51-255,Target:0;0&1;{hx(b'ANDMARK1')};{hx(b'ANDMARK2')}",
                f"L.Or;Engine:51-255,Target:0;0|1;{hx(b'ORMARK01')};{hx(b'ORMARK02')}",
                f"L.Paren;Engine:51-255,Target:0;(0|1)&2;{hx(b'PARMARK1')};{hx(b'PARMARK2')};"
                f"{hx(b'PARMARK3')}",
                f"L.Eq;Engine:51-255,Target:0;0=2;{hx(b'EQMARK01')}",
                f"L.Gt;Engine:51-255,Target:0;0>2;{hx(b'GTMARK01')}",
                f"L.Lt;Engine:51-255,Target:0;0<2&1;{hx(b'LTMARK01')};{hx(b'LTMARK02')}",
                f"L.Uniq;Engine:51-255,Target:0;(0|1|2)>1,2;{hx(b'UQMARK01')};"
                f"{hx(b'UQMARK02')};{hx(b'UQMARK03')}",
                f"L.Nocase;Engine:51-255,Target:0;0&1;{hx(b'nocasemark')}::i;{hx(b'NCTAIL01')}",
                f"L.Wide;Engine:51-255,Target:0;0;{hx(b'WIDEMARK')}::w",
                f"L.WideAscii;Engine:51-255,Target:0;0;{hx(b'WAMARK01')}::wa",
                f"L.Full;Engine:51-255,Target:0;0&1;{hx(b'fullword')}::f;{hx(b'FWTAIL01')}",
                f"L.Target;Engine:51-255,Target:1;0&1;{hx(b'LTGMARK1')};{hx(b'LTGMARK2')}",
                f"L.Offset;Engine:51-255,Target:0;0&1;0:{hx(b'HEADMARK')};{hx(b'OFFTAIL1')}",
                f"L.Pcre;Engine:81-255,Target:0;0&1;{hx(b'PCREMARK')};0/evil[0-9]{{3}}x/",
            ])},
            {
                "and_pos": binary(b"ANDMARK1", b"ANDMARK2"), "and_neg": binary(b"ANDMARK1"),
                "or_pos": binary(b"ORMARK02"), "or_neg": binary(b"ORMARK03"),
                "paren_pos": binary(b"PARMARK2", b"PARMARK3"),
                "paren_neg": binary(b"PARMARK1", b"PARMARK2"),
                "eq_pos": binary(b"EQMARK01", b"EQMARK01"),
                "eq_neg": binary(b"EQMARK01", b"EQMARK01", b"EQMARK01"),
                "gt_pos": binary(b"GTMARK01", b"GTMARK01", b"GTMARK01"),
                "gt_neg": binary(b"GTMARK01", b"GTMARK01"),
                "lt_pos": binary(b"LTMARK01", b"LTMARK02"),
                "lt_neg": binary(b"LTMARK01", b"LTMARK01", b"LTMARK02"),
                "uniq_pos": binary(b"UQMARK01", b"UQMARK01", b"UQMARK03"),
                "uniq_neg": binary(b"UQMARK02", b"UQMARK02", b"UQMARK02"),
                "nocase_pos": binary(b"NoCaseMARK", b"NCTAIL01"),
                "nocase_neg": binary(b"NoCase-MARK", b"NCTAIL01"),
                "wide_pos": binary("WIDEMARK".encode("utf-16-le")),
                "wide_neg": binary(b"WIDEMARK"),
                "wideascii_pos": binary(b"WAMARK01"),
                "wideascii_neg": binary(b"WAMARK02"),
                "full_pos": binary(b"a fullword.", b"FWTAIL01"),
                "full_neg": binary(b"a fullwords", b"FWTAIL01"),
                "target_pos": make_pe(b"LTGMARK1 LTGMARK2", b"d"),
                "target_neg": binary(b"LTGMARK1", b"LTGMARK2"),
                "offset_pos": b"HEADMARK" + binary(b"OFFTAIL1"),
                "offset_neg": b"-HEADMARK" + binary(b"OFFTAIL1"),
                "pcre_pos": binary(b"PCREMARK", b"evil123x"),
                "pcre_neg": binary(b"PCREMARK", b"evil12x"),
            },
            {
                "and_pos": "L.And", "and_neg": None, "or_pos": "L.Or", "or_neg": None,
                "paren_pos": "L.Paren", "paren_neg": None, "eq_pos": "L.Eq", "eq_neg": None,
                "gt_pos": "L.Gt", "gt_neg": None, "lt_pos": "L.Lt", "lt_neg": None,
                "uniq_pos": "L.Uniq", "uniq_neg": None, "nocase_pos": "L.Nocase",
                "nocase_neg": None, "wide_pos": "L.Wide", "wide_neg": None,
                "wideascii_pos": "L.WideAscii", "wideascii_neg": None, "full_pos": "L.Full",
                "full_neg": None, "target_pos": "L.Target", "target_neg": None,
                "offset_pos": "L.Offset", "offset_neg": None, "pcre_pos": "L.Pcre",
                "pcre_neg": None,
            },
        ),
        _allow_group(),
        Group(
            "ign2",
            {"i.ndb": f"Ign.A:0:*:{hx(b'IGNOREDMARK')}\nIgn.B:0:*:{hx(b'KEPTMARK01')}",
             "local.ign2": "Ign.A"},
            {"a": binary(b"IGNOREDMARK"), "b": binary(b"KEPTMARK01")},
            {"a": None, "b": "Ign.B"},
        ),
        _container_group(),
        _mail_group(),
        Group(
            "ldb-attributes",
            {"a.ldb": "\n".join([
                f"C.Zip;Engine:81-255,Container:CL_TYPE_ZIP,Target:0;0;{hx(b'CONTMARK01')}",
                f"C.Mail;Engine:81-255,Container:CL_TYPE_MAIL,Target:0;0;{hx(b'CONTMARK02')}",
                f"P.Secs;Engine:51-255,Target:1,NumberOfSections:2-2;0;{hx(b'SECSMARK')}",
                f"P.Secs3;Engine:51-255,Target:1,NumberOfSections:3-5;0;{hx(b'SECSMRK3')}",
                f"P.Ep;Engine:51-255,Target:1,EntryPoint:512-530;0;{hx(b'EPRANGEMK')}",
                f"F.Size;Engine:51-255,Target:0,FileSize:20-40;0;{hx(b'SIZEMARK')}",
            ])},
            {
                "zip_pos": make_zip({"a.bin": binary(b"CONTMARK01")}),
                "zip_neg": binary(b"CONTMARK01"),
                "zip_in_mail_neg": mime([("application/octet-stream", binary(b"CONTMARK01"),
                                          "base64", [])]),
                "mail_pos": mime([("application/octet-stream", binary(b"CONTMARK02"), "base64",
                                   [])]),
                "mail_neg": make_zip({"a.bin": binary(b"CONTMARK02")}),
                "secs_pos": make_pe(b"SECSMARK", b"d"), "secs3_neg": make_pe(b"SECSMRK3", b"d"),
                "ep_pos": make_pe(b"\x90" * 8 + b"EPRANGEMK", b"d", ep=8),
                "ep_neg": make_pe(b"\x90" * 40 + b"EPRANGEMK", b"d", ep=40),
                "size_pos": b"\x00\x01SIZEMARK" + b"\x00" * 15,
                "size_neg": b"\x00\x01SIZEMARK" + b"\x00" * 45,
            },
            {"zip_pos": "C.Zip", "zip_neg": None, "zip_in_mail_neg": None, "mail_pos": "C.Mail",
             "mail_neg": None, "secs_pos": "P.Secs", "secs3_neg": None, "ep_pos": "P.Ep",
             "ep_neg": None, "size_pos": "F.Size", "size_neg": None},
        ),
        Group(
            "heuristics",
            {"h.ndb": f"Unused.Sig:0:*:{hx(b'NEVERPRESENT')}"},
            {
                "encrypted_zip": _encrypt_flag(make_zip({"secret.exe": b"MZ secret" * 10})),
                "plain_zip": make_zip({"secret.exe": b"MZ secret" * 10}),
                # one sample per depth: clamscan's clean cache would hide a nested copy
                "deep20": _nest_gzip(b"deep-a", 20),
                "shallow10": _nest_gzip(b"shallow-b", 10),
            },
            {"encrypted_zip": "Heuristics.Encrypted.Zip", "plain_zip": None,
             "deep20": "Heuristics.Limits.Exceeded.MaxRecursion", "shallow10": None},
            clam_args=("--alert-encrypted", "--alert-exceeds-max"),
        ),
        Group(
            "counts-normalisation",
            {
                "c.ldb": "\n".join([
                    f"Ov.Three;Engine:51-255,Target:0;0=3;{hx(b'AAAA')}",
                    f"Ov.Multi;Engine:51-255,Target:0;0=2;{hx(b'BB')}*{hx(b'CC')}",
                    f"Pc.Nocase;Engine:81-255,Target:0;0&1;{hx(b'PCTRIG')};0/abc[0-9]+def/i",
                    f"Pc.Offset;Engine:81-255,Target:0;0&1;{hx(b'OFTRIG')};10:0/xyz/",
                    f"Full.Edge;Engine:51-255,Target:0;0;{hx(b'edgeword')}::f",
                ]),
                "c.ndb": "\n".join([
                    f"Norm.Lower:0:*:{hx(b'hello evil world')}",
                    f"Html.Sig:3:*:{hx(b'<script>evil')}",
                    f"Eof.Shift:0:EOF-10,4:{hx(b'TAILMK')}",
                ]),
            },
            {
                "ov5": b"\x00\x01AAAAA\x00", "ov6": b"\x00\x01AAAAAA\x00",
                "ov7": b"\x00\x01AAAAAAA\x00",
                "multi_one_tail": b"\x00BB..BB..CC\x00", "multi_two_tails": b"\x00BB..CC..CC\x00",
                "upper_text": b"Some text\nHELLO  EVIL\tWORLD\n",
                "html_upper": b"<html><body><SCRIPT>evil()</SCRIPT></body></html>\n",
                "html_lower": b"<html><body><script>evil()</script></body></html>\n",
                "html_neg": b"<html><body><script>good()</script></body></html>\n",
                "pcre_pos": b"\x00PCTRIG ABC123DEF\x00", "pcre_neg": b"\x00PCTRIG ABCDEF\x00",
                "pcre_at10": b"\x00OFTRIG...xyz...\x00", "pcre_at9": b"\x00OFTRIG..xyz.....\x00",
                "full_start": b"edgeword\x00\x01", "full_end": b"\x00\x01edgeword",
                "full_neg": b"\x00xedgeword",
                "eof_in": b"\x00\x01TAILMK..\x00", "eof_out": b"\x00\x01TAILMK......\x00",
            },
            {
                "ov5": None, "ov6": "Ov.Three", "ov7": None, "multi_one_tail": None,
                "multi_two_tails": "Ov.Multi", "upper_text": "Norm.Lower",
                "html_upper": "Html.Sig", "html_lower": "Html.Sig", "html_neg": None,
                "pcre_pos": "Pc.Nocase", "pcre_neg": None, "pcre_at10": "Pc.Offset",
                "pcre_at9": None, "full_start": "Full.Edge", "full_end": "Full.Edge",
                "full_neg": None, "eof_in": "Eof.Shift", "eof_out": None,
            },
        ),
    ]


FP_X = binary(b"ALLOWMARK1", b"x")
FP_Y = binary(b"ALLOWMARK1", b"y")
FP_Z = binary(b"ALLOWMARK1", b"z")
FP_ZIP = make_zip({"inner.bin": binary(b"ALLOWMARK1", b"inner")})


def _allow_group() -> Group:
    return Group(
        "fp-sfp",
        {
            "f.ndb": f"Allow.Sig:0:*:{hx(b'ALLOWMARK1')}",
            "f.fp": f"{md5(FP_X)}:{len(FP_X)}:Allowed.X\n{md5(FP_ZIP)}:{len(FP_ZIP)}:Allowed.Zip",
            "f.sfp": f"{sha256(FP_Y)}:{len(FP_Y)}:Allowed.Y",
        },
        {"x": FP_X, "y": FP_Y, "z": FP_Z, "zip_allowed": FP_ZIP,
         "zip_other": make_zip({"inner.bin": binary(b"ALLOWMARK1", b"other")})},
        {"x": None, "y": None, "z": "Allow.Sig", "zip_allowed": None, "zip_other": "Allow.Sig"},
    )


INNER = binary(b"CONTAINERMARK", b"payload")
INNER_HASHED = binary(b"hashed member only")


def _container_group() -> Group:
    return Group(
        "containers",
        {
            "c.ndb": f"Box.Body:0:*:{hx(b'CONTAINERMARK')}",
            "c.hdb": f"{md5(INNER_HASHED)}:{len(INNER_HASHED)}:Box.Hash",
        },
        {
            "mail_b64": mail([("application/octet-stream", INNER, "base64")]),
            "mail_qp": mail([("text/plain", b"see CONTAINERMARK here =\n", "quoted-printable")]),
            "mail_clean": mail([("application/octet-stream", binary(b"harmless"), "base64")]),
            "zip_deflate": make_zip({"a.bin": INNER}),
            "zip_stored": make_zip({"a.bin": INNER}, compress=False),
            "zip_clean": make_zip({"a.bin": binary(b"harmless")}),
            "zip_hash": make_zip({"h.bin": INNER_HASHED}),
            "mail_zip_hash": mail([("application/zip", make_zip({"h.bin": INNER_HASHED}),
                                    "base64")]),
            "tar": make_tar({"a.bin": INNER}),
            "gzip": make_gzip(INNER),
            "mail_zip": mail([("application/zip", make_zip({"a.bin": INNER}), "base64")]),
        },
        {
            "mail_b64": "Box.Body", "mail_qp": "Box.Body", "mail_clean": None,
            "zip_deflate": "Box.Body", "zip_stored": "Box.Body", "zip_clean": None,
            "zip_hash": "Box.Hash", "mail_zip_hash": "Box.Hash", "tar": "Box.Body",
            "gzip": "Box.Body", "mail_zip": "Box.Body",
        },
    )


def _encrypt_flag(z: bytes) -> bytes:
    """Set the 'encrypted' bit in every zip header (the data itself stays plain)."""
    out = bytearray(z)
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = out.find(sig)
        while i >= 0:
            (flags,) = struct.unpack_from("<H", out, i + off)
            struct.pack_into("<H", out, i + off, flags | 1)
            i = out.find(sig, i + 4)
    return bytes(out)


def _nest_gzip(data: bytes, depth: int) -> bytes:
    for _ in range(depth):
        data = make_gzip(data)
    return data


NESTED = b"From: x@example.org\r\nSubject: NESTEDMAILMARK\r\n\r\nbody\r\n"


def _mail_group() -> Group:
    attach = ['Content-Disposition: attachment; filename="x.bin"']
    return Group(
        "mail",
        {"m.ndb": "\n".join([
            f"Mail.Lower:0:*:{hx(b'hello evil world')}",
            f"Mail.Nested:4:*:{hx(b'NESTEDMAILMARK')}",
            f"Mail.Html7:7:*:{hx(b'document.write(evil')}",
            f"Mail.Start:0:0:{hx(b'STARTOFATTACH')}",
            f"Mail.Eof:0:EOF-11:{hx(b'ENDOFATTACH')}",
        ])},
        {
            "text_upper": mime([("text/plain", b"Dear user,\r\nHELLO   EVIL\r\n WORLD\r\n", None,
                                 [])]),
            "text_neg": mime([("text/plain", b"Dear user,\r\nHELLO GOOD WORLD\r\n", None, [])]),
            "nested": mime([("message/rfc822", NESTED, None, [])]),
            "nested_b64": mime([("message/rfc822", NESTED, "base64", [])]),
            "html7": mime([("text/html", b"<html><script>Document.Write(evil)</script></html>",
                            "base64", [])]),
            "start": mime([("application/octet-stream", b"STARTOFATTACH\x00\x01 rest", "base64",
                            attach)]),
            "start_neg": mime([("application/octet-stream", b"-STARTOFATTACH\x00\x01 rest",
                                "base64", attach)]),
            "eof": mime([("application/octet-stream", b"\x00\x01 stuff ENDOFATTACH", "base64",
                          attach)]),
            "eof_neg": mime([("application/octet-stream", b"\x00\x01 stuff ENDOFATTACH.",
                              "base64", attach)]),
        },
        {
            "text_upper": "Mail.Lower", "text_neg": None, "nested": "Mail.Nested",
            "nested_b64": "Mail.Nested", "html7": "Mail.Html7", "start": "Mail.Start",
            "start_neg": None, "eof": "Mail.Eof", "eof_neg": None,
        },
    )


GROUPS = _groups()


def _write(root: Path, files: dict[str, bytes] | dict[str, str]) -> None:
    root.mkdir(parents=True)
    for name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        (root / name).write_bytes(data + (b"\n" if isinstance(content, str) else b""))


def run_clamscan(db: Path, samples: Path, extra: tuple[str, ...] = ()) -> dict[str, str | None]:
    assert CLAMSCAN is not None
    proc = subprocess.run(
        [CLAMSCAN, "--no-summary", *extra, "-d", str(db), "-r", str(samples)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr
    out: dict[str, str | None] = {}
    for line in proc.stdout.splitlines():
        path, _, verdict = line.rpartition(": ")
        name = Path(path).name
        if verdict == "OK":
            out[name] = None
        elif verdict.endswith(" FOUND"):
            out[name] = verdict[: -len(" FOUND")].removesuffix(".UNOFFICIAL")
    return out


def run_zerohour(db: Path, samples: Path) -> dict[str, str | None]:
    engine = Engine(load_database([db], strict=True, use_cache=False))
    out: dict[str, str | None] = {}
    for p in sorted(samples.iterdir()):
        report = engine.scan_path(p)
        assert not report.errors, report.errors
        out[p.name] = report.names[0] if report.names else None
    return out


@pytest.mark.skipif(CLAMSCAN is None, reason="clamscan not installed (scripts/system-deps)")
@pytest.mark.parametrize("group", GROUPS, ids=[g.name for g in GROUPS])
def test_same_verdicts_as_clamscan(group: Group, tmp_path: Path) -> None:
    db, samples = tmp_path / "db", tmp_path / "samples"
    _write(db, group.db)
    _write(samples, group.samples)
    clam = run_clamscan(db, samples, group.clam_args)
    ours = run_zerohour(db, samples)
    assert set(clam) == set(group.samples), f"clamscan did not report every sample: {clam}"
    for name in group.samples:
        if name in group.differs:
            clam_v, ours_v, _why = group.differs[name]
            assert (clam[name], ours[name]) == (clam_v, ours_v), name
            continue
        assert clam[name] == group.expect[name], f"{name}: clamscan says {clam[name]!r}"
        assert ours[name] == group.expect[name], f"{name}: zerohour says {ours[name]!r}"
