"""String manipulation templates: shifting, substituting, re-casing, compressing, padding."""

from __future__ import annotations

import random
import string

from toolgym.envs.code.families.base import Spec, Template, pick_name, sentence, word

PUNCT_TEXT = "Hello, World! 42 apples & zebras."


def _texts(rng: random.Random, n: int = 7) -> list[tuple[str]]:
    """Edge cases first, then random sentences (some with capitals and digits)."""
    texts = ["", PUNCT_TEXT]
    for _ in range(n):
        text = sentence(rng, 1, 6)
        if rng.random() < 0.4:
            text = text.capitalize() + rng.choice([".", "!", " 7", "?"])
        texts.append(text)
    return [(t,) for t in texts]


def caesar(rng: random.Random) -> Spec:
    """Shift the letters of one case k places (a Caesar cipher)."""
    k = rng.randint(1, 25)
    upper = rng.random() < 0.5
    cond = "'a' <= ch <= 'z'" if not upper else "'A' <= ch <= 'Z'"
    base = 97 if not upper else 65
    kind = "lowercase" if not upper else "uppercase"
    return Spec(
        template="strings.caesar",
        key=(k, upper),
        difficulty=2,
        name=pick_name(rng, "shift_letters", "rotate_letters", "caesar_encode"),
        params="text: str",
        returns="str",
        doc=f"Shift every {kind} ASCII letter of text {k} places forward in the alphabet, "
        f"wrapping around after '{'z' if not upper else 'Z'}'. All other characters "
        "(including letters of the other case) are unchanged.",
        body=f"""\
    out = []
    for ch in text:
        if {cond}:
            ch = chr((ord(ch) - {base} + {k}) % 26 + {base})
        out.append(ch)
    return ''.join(out)
""",
        inputs=_texts(rng) + [("The Quick Brown Fox",), ("XYZ abc",)],
    )


def substitute(rng: random.Random) -> Spec:
    """Replace a few chosen characters by others."""
    sources = rng.sample("aeiostlnr", rng.randint(2, 3))
    table = {s: rng.choice("@#$%&*0123456789") for s in sorted(sources)}
    listed = ", ".join(f"{s!r} with {t!r}" for s, t in table.items())
    return Spec(
        template="strings.substitute",
        key=tuple(table.items()),
        difficulty=1,
        name=pick_name(rng, "substitute_chars", "leetify", "translate_chars"),
        params="text: str",
        returns="str",
        doc=f"Replace every {listed} in text. Other characters are unchanged.",
        body=f"""\
    table = {table!r}
    return ''.join(table.get(ch, ch) for ch in text)
""",
        inputs=_texts(rng),
    )


_CLASSES = {
    "vowel (a, e, i, o, u)": "aeiou",
    "digit": string.digits,
    "uppercase letter": string.ascii_uppercase,
    "space": " ",
    "punctuation mark among . , ! ?": ".,!?",
}


def repeat_class(rng: random.Random) -> Spec:
    """Repeat every character of one class (vowels, digits...) n times."""
    label = rng.choice(sorted(_CLASSES))
    n = rng.randint(2, 5)
    return Spec(
        template="strings.repeat_class",
        key=(label, n),
        difficulty=1,
        name=pick_name(rng, "stretch", "repeat_selected", "stutter"),
        params="text: str",
        returns="str",
        doc=f"Return text with every {label} repeated {n} times in a row; every other "
        "character appears once, as in the input.",
        body=f"""\
    return ''.join(ch * {n} if ch in {_CLASSES[label]!r} else ch for ch in text)
""",
        inputs=_texts(rng) + [("Room 101, Level 3!",)],
    )


def alternate_case(rng: random.Random) -> Spec:
    """Uppercase every k-th letter, lowercase the rest."""
    k = rng.randint(2, 4)
    r = rng.randrange(k)
    return Spec(
        template="strings.alternate_case",
        key=(k, r),
        difficulty=2,
        name=pick_name(rng, "wave_case", "alternate_case", "stripe_case"),
        params="text: str",
        returns="str",
        doc=f"Number the letters of text 0, 1, 2, ... counting letters only. A letter whose "
        f"number leaves remainder {r} when divided by {k} becomes uppercase; every other "
        "letter becomes lowercase. Non-letters are unchanged and do not advance the count.",
        body=f"""\
    out = []
    index = 0
    for ch in text:
        if ch.isalpha():
            ch = ch.upper() if index % {k} == {r} else ch.lower()
            index += 1
        out.append(ch)
    return ''.join(out)
""",
        inputs=_texts(rng),
    )


_WORD_ACTIONS = {
    "reversed": "w[::-1]",
    "uppercased": "w.upper()",
    "replaced by its length written in digits": "str(len(w))",
    "cut to its first three letters": "w[:3]",
}


def transform_long_words(rng: random.Random) -> Spec:
    """Reverse / uppercase / shorten words of at least n characters."""
    n = rng.randint(3, 7)
    action = rng.choice(sorted(_WORD_ACTIONS))
    return Spec(
        template="strings.long_words",
        key=(n, action),
        difficulty=2,
        name=pick_name(rng, "transform_long_words", "edit_long_words", "shout_long_words"),
        params="text: str",
        returns="str",
        doc=f"text consists of words separated by single spaces. Every word with at least "
        f"{n} characters is {action}; shorter words stay as they are. Keep the single "
        "spaces between words.",
        body=f"""\
    return ' '.join({_WORD_ACTIONS[action]} if len(w) >= {n} else w for w in text.split(' '))
""",
        inputs=[(sentence(rng, 1, 7),) for _ in range(8)]
        + [("a bb ccc dddd eeeee ffffff ggggggg",)],
    )


def strip_chars(rng: random.Random) -> Spec:
    """Delete every occurrence of a set of characters."""
    removed = "".join(sorted(rng.sample("aeioustrnl ,.!", rng.randint(3, 5))))
    return Spec(
        template="strings.strip_chars",
        key=(removed,),
        difficulty=1,
        name=pick_name(rng, "remove_chars", "drop_chars", "purge"),
        params="text: str",
        returns="str",
        doc=f"Return text with every occurrence of the characters in {removed!r} removed.",
        body=f"""\
    return ''.join(ch for ch in text if ch not in {removed!r})
""",
        inputs=_texts(rng),
    )


_RLE_FORMATS = ("{c}{r}", "{r}{c}", "{c}x{r}", "{r}*{c}")


def run_length(rng: random.Random) -> Spec:
    """Run-length encode runs of at least m characters in a given pattern."""
    m = rng.randint(2, 4)
    fmt = rng.choice(_RLE_FORMATS)
    example = fmt.format(c="a", r=4)
    runs = [word(rng, 3, 14, alphabet=rng.choice(["ab", "abc", "xyz"])) for _ in range(6)]
    return Spec(
        template="strings.run_length",
        key=(m, fmt),
        difficulty=3,
        name=pick_name(rng, "compress_runs", "run_length_encode", "squeeze"),
        params="text: str",
        returns="str",
        doc=f"Compress runs of equal characters: a run of {m} or more equal characters "
        f"is written as {example!r} (shown for 'aaaa': character and run length in that "
        f"pattern). Runs shorter than {m} are copied unchanged.",
        body=f"""\
    out = []
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and text[j] == text[i]:
            j += 1
        run = j - i
        if run >= {m}:
            out.append({fmt!r}.format(c=text[i], r=run))
        else:
            out.append(text[i] * run)
        i = j
    return ''.join(out)
""",
        inputs=[("",), ("aaaa",), ("abbcccdddd",), ("zzzzzzzzzzzz",)] + [(r,) for r in runs],
    )


def mask(rng: random.Random) -> Spec:
    """Keep the first or last k characters, mask the rest."""
    k = rng.randint(1, 5)
    fill = rng.choice("*#x-")
    keep_end = rng.random() < 0.5
    where = "last" if keep_end else "first"
    kept = f"text[-{k}:]" if keep_end else f"text[:{k}]"
    masked = f"{fill!r} * (len(text) - {k})"
    result = f"{masked} + {kept}" if keep_end else f"{kept} + {masked}"
    return Spec(
        template="strings.mask",
        key=(k, fill, keep_end),
        difficulty=1,
        name=pick_name(rng, "mask_text", "hide_chars", "redact"),
        params="text: str",
        returns="str",
        doc=f"Keep the {where} {k} characters of text and replace every other character "
        f"with {fill!r}. A text of at most {k} characters is returned unchanged.",
        body=f"""\
    if len(text) <= {k}:
        return text
    return {result}
""",
        inputs=[("",), ("ab",), ("4111111111111111",), ("secret",)]
        + [(word(rng, 1, 12),) for _ in range(5)],
    )


def center(rng: random.Random) -> Spec:
    """Center text in a fixed width with a fill character."""
    width = rng.randint(5, 12)
    fill = rng.choice(".*-_=")
    extra_right = rng.random() < 0.5
    side = "right" if extra_right else "left"
    left = "pad // 2" if extra_right else "pad - pad // 2"
    return Spec(
        template="strings.center",
        key=(width, fill, extra_right),
        difficulty=1,
        name=pick_name(rng, "center_text", "pad_both_sides", "centre"),
        params="text: str",
        returns="str",
        doc=f"Center text in a field {width} characters wide, padding with {fill!r}. When "
        f"the padding cannot be split evenly, the extra {fill!r} goes on the {side}. "
        f"Text longer than {width} characters is returned unchanged.",
        body=f"""\
    pad = max(0, {width} - len(text))
    left = {left}
    return {fill!r} * left + text + {fill!r} * (pad - left)
""",
        inputs=[("",), ("ab",), ("abc",), ("a" * (width + 2),)]
        + [(word(rng, 1, width),) for _ in range(5)],
    )


TEMPLATES: list[Template] = [
    caesar,
    substitute,
    repeat_class,
    alternate_case,
    transform_long_words,
    strip_chars,
    run_length,
    mask,
    center,
]
