"""Read the WordNet 3.0 database that Debian's ``wordnet-base`` installs.

Runs at image build time (standard library only). :func:`load` parses
``data.{noun,verb,adj,adv}`` (synsets: words, pointers, gloss) and
``index.*`` (each lemma's senses in WordNet's frequency order) into a
:class:`WordNet` that ``build_corpus.py`` renders into documents and
``make_tasks.py`` mines for questions. The file format is ``wndb(5WN)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
POS_NAMES = {"n": "noun", "v": "verb", "a": "adjective", "s": "adjective", "r": "adverb"}
_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")
_QUOTED = re.compile(r'"([^"]*)"')


@dataclass
class Pointer:
    """One relation: ``symbol`` (``@`` hypernym, ``!`` antonym, ``#p`` part holonym, ...)."""

    symbol: str
    target: str
    """Key of the target synset (``pos:offset``)."""
    source_word: int
    """1-based word of this synset the pointer leaves from; 0 for the whole synset."""
    target_word: int


@dataclass
class Synset:
    """One WordNet synset."""

    key: str
    pos: str
    words: list[str]
    """Lemmas as written (``Canis_familiaris``), adjective markers removed."""
    pointers: list[Pointer]
    definition: str
    examples: list[str]
    senses: dict[str, int] = field(default_factory=dict)
    """Lower-cased lemma -> this synset's sense number in that lemma's document."""

    @property
    def lemmas(self) -> list[str]:
        """The words as document ids: lower case, underscores."""
        return [w.lower() for w in self.words]

    def names(self) -> list[str]:
        """The words as a reader writes them: ``Canis familiaris``."""
        return [w.replace("_", " ") for w in self.words]

    def targets(self, symbol: str) -> list[str]:
        """Keys of the synsets this one points to with ``symbol``, in file order, no repeats."""
        return list(dict.fromkeys(p.target for p in self.pointers if p.symbol == symbol))


@dataclass
class WordNet:
    """Every synset, and every lemma's senses in order."""

    synsets: dict[str, Synset]
    lemmas: dict[str, list[str]]
    """Lower-cased lemma -> synset keys, nouns first, then verbs, adjectives, adverbs."""


def _data_key(pos: str, offset: str) -> str:
    return f"{'a' if pos == 's' else pos}:{offset}"


def parse_data_line(line: str) -> Synset:
    """Parse one line of a ``data.*`` file.

    >>> s = parse_data_line('00002098 00 a 01 unable 0 002 = 05200169 n 0000 '
    ...                     '! 00001740 a 0101 | not able; "unable to swim"  ')
    >>> s.key, s.words, s.definition, s.examples, s.pointers[1].symbol
    ('a:00002098', ['unable'], 'not able', ['unable to swim'], '!')
    """
    head, _, gloss = line.partition(" | ")
    fields = head.split()
    offset, pos = fields[0], fields[2]
    n_words = int(fields[3], 16)
    words = [_ADJ_MARKER.sub("", fields[4 + 2 * i]) for i in range(n_words)]
    at = 4 + 2 * n_words
    n_pointers = int(fields[at])
    pointers = []
    for i in range(n_pointers):
        symbol, target, target_pos, src_tgt = fields[at + 1 + 4 * i: at + 5 + 4 * i]
        pointers.append(Pointer(symbol, _data_key(target_pos, target),
                                int(src_tgt[:2], 16), int(src_tgt[2:], 16)))
    definition, examples = split_gloss(gloss.strip())
    return Synset(_data_key(pos, offset), pos, words, pointers, definition, examples)


def split_gloss(gloss: str) -> tuple[str, list[str]]:
    """Split a gloss into its definition and its quoted examples.

    >>> split_gloss('a domesticated canine; "the dog barked"; "a good dog"')
    ('a domesticated canine', ['the dog barked', 'a good dog'])
    """
    cut = gloss.find('"')
    definition = gloss if cut < 0 else gloss[:cut]
    examples = _QUOTED.findall(gloss[cut:]) if cut >= 0 else []
    return definition.strip().rstrip(";").strip(), [e.strip() for e in examples if e.strip()]


def load(root: Path) -> WordNet:
    """Parse the database under ``root`` (``/usr/share/wordnet``)."""
    synsets: dict[str, Synset] = {}
    for name in POS_FILES.values():
        for line in _lines(root / f"data.{name}"):
            synset = parse_data_line(line)
            synsets[synset.key] = synset
    lemmas: dict[str, list[str]] = {}
    for pos, name in POS_FILES.items():
        for line in _lines(root / f"index.{name}"):
            fields = line.split()
            n_synsets, n_pointers = int(fields[2]), int(fields[3])
            offsets = fields[6 + n_pointers: 6 + n_pointers + n_synsets]
            keys = lemmas.setdefault(fields[0], [])
            keys.extend(_data_key(pos, o) for o in offsets if _data_key(pos, o) not in keys)
    for lemma, keys in lemmas.items():
        for number, key in enumerate(keys, start=1):
            synsets[key].senses[lemma] = number
    return WordNet(synsets, lemmas)


def _lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return [line for line in text.splitlines() if line and not line.startswith("  ")]
