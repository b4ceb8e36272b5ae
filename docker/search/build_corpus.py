"""Build the search corpus at image build time: one document per WordNet lemma, and its BM25 index.

    python3 build_corpus.py /usr/share/wordnet /opt/search/data

writes ``docs.sqlite`` (table ``docs(n, id, title, text)``; ``n`` is the
document's row in the index) and ``index/`` (a ``bm25s`` index over title and
text, English stop words removed, no stemming). A document is a dictionary
page: every sense of the lemma, numbered ``#1``, ``#2``... in WordNet's order,
each with its definition, examples and relations. A relation to a single
synset names it with a reference ``[doc_id #sense]`` the reader can ``open``,
which is what makes multi-hop questions answerable by following links.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import wordnet
from wordnet import POS_NAMES, Synset, WordNet

LIST_CAP = 12
"""Most names shown for a list relation (kinds, parts, members ...)."""
LINKED = (("@", "a kind of"), ("@i", "an instance of"), ("#p", "part of"),
          ("#m", "member of"), ("#s", "substance of"))
"""Relations to single synsets, shown with ``[doc_id #sense]`` references."""
LISTED = (("~", "kinds"), ("~i", "instances"), ("%p", "parts"), ("%m", "members"),
          ("%s", "substances"), ("&", "similar to"), ("*", "entails"))
"""Relations shown as a list of names."""


def ref(wn: WordNet, key: str, word: int = 0) -> str:
    """``canine, canid [canine #2]``; with ``word`` (1-based) only that word is named."""
    synset = wn.synsets[key]
    names = synset.names()
    lemma = synset.lemmas[word - 1 if word else 0]
    shown = names[word - 1] if word else ", ".join(names[:4])
    return f"{shown} [{lemma} #{synset.senses[lemma]}]" if lemma in synset.senses else shown


def names_of(wn: WordNet, keys: list[str]) -> str:
    """The first name of each synset, at most :data:`LIST_CAP`, and how many were left out."""
    names = list(dict.fromkeys(wn.synsets[k].names()[0] for k in keys))
    more = f" (+{len(names) - LIST_CAP} more)" if len(names) > LIST_CAP else ""
    return ", ".join(names[:LIST_CAP]) + more


def sense_block(wn: WordNet, lemma: str, number: int, synset: Synset) -> list[str]:
    """The lines of one sense of ``lemma``'s document."""
    lines = [f"#{number} ({POS_NAMES[synset.pos]}) {synset.definition}"]
    if synset.examples:
        lines.append("   examples: " + "; ".join(f'"{e}"' for e in synset.examples[:3]))
    others = [n for n, low in zip(synset.names(), synset.lemmas, strict=True) if low != lemma]
    if others:
        lines.append("   synonyms: " + ", ".join(others))
    for symbol, label in LINKED:
        targets = synset.targets(symbol)
        if targets:
            lines.append(f"   {label}: " + "; ".join(ref(wn, k) for k in targets))
    opposites = [ref(wn, p.target, p.target_word) for p in synset.pointers
                 if p.symbol == "!" and _from_lemma(synset, p.source_word, lemma)]
    if opposites:
        lines.append("   opposite: " + "; ".join(dict.fromkeys(opposites)))
    for symbol, label in LISTED:
        targets = synset.targets(symbol)
        if targets:
            lines.append(f"   {label}: {names_of(wn, targets)}")
    return lines


def _from_lemma(synset: Synset, source_word: int, lemma: str) -> bool:
    return source_word == 0 or synset.lemmas[source_word - 1] == lemma


def document(wn: WordNet, lemma: str) -> tuple[str, str]:
    """``(title, text)`` of ``lemma``'s page."""
    keys = wn.lemmas[lemma]
    kinds = ", ".join(dict.fromkeys(POS_NAMES[wn.synsets[k].pos] for k in keys))
    title = lemma.replace("_", " ")
    lines = [f"{title} ({kinds})"]
    for number, key in enumerate(keys, start=1):
        lines.extend(sense_block(wn, lemma, number, wn.synsets[key]))
    return title, "\n".join(lines)


def build(root: Path, out: Path) -> int:
    """Write ``docs.sqlite`` and ``index/`` under ``out``; return the number of documents."""
    import bm25s

    wn = wordnet.load(root)
    out.mkdir(parents=True, exist_ok=True)
    db_path = out / "docs.sqlite"
    db_path.unlink(missing_ok=True)
    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE docs (n INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, "
               "title TEXT NOT NULL, text TEXT NOT NULL)")
    texts = []
    for n, lemma in enumerate(sorted(wn.lemmas)):
        title, text = document(wn, lemma)
        db.execute("INSERT INTO docs VALUES (?, ?, ?, ?)", (n, lemma, title, text))
        texts.append(text)  # the text starts with the title
    db.commit()
    db.close()
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False),
                    show_progress=False)
    retriever.save(str(out / "index"))
    return len(texts)


if __name__ == "__main__":
    count = build(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"build_corpus: {count} documents")
