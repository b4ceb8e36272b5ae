"""Generate the search questions at image build time, each checked against the corpus.

    python3 make_tasks.py /usr/share/wordnet /opt/search/data /opt/search/tasks.jsonl

Questions come from WordNet's structure, so every answer is known exactly:

=============  ====  ==================================================================
kind           hops  question
=============  ====  ==================================================================
define         1     Which word is defined as "<definition>"?
hypernym       1     "<word>", in the sense "<definition>", is a kind of what?
part_of        1     "<word>", in the sense "<definition>", is a part of what?
antonym        1     What is the opposite of the <pos> defined as "<definition>"?
hypernym2      2     The word defined as "<definition>" is a kind of X; X is a kind of what?
part_kind      2     The word defined as "<definition>" is a part of X; X is a kind of what?
=============  ====  ==================================================================

The answer is the synset the relation leads to; any of its names counts (the
host scores the best match). A candidate becomes a task only if:

- its definition is unique in WordNet (so the described sense is unambiguous)
  and has 5 to 30 words, and the relation leads to exactly one synset;
- no answer name appears in the question, and for two hops, none appears in
  the first hop's documents (the second hop is needed);
- a BM25 search for the oracle's query ranks a gold document in the top
  :data:`TOP_K` (the first hop is findable), and the last document the oracle
  opens shows the answer on the page it opens (the answer is derivable).

Candidates are visited in an order fixed by a hash of their synset, so the
same image always yields the same tasks. The split is a hash of the synset
too: every question about one synset is in the same split.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
import sys
from collections import Counter
from pathlib import Path

import searchd
import wordnet
from build_corpus import ref
from wordnet import POS_NAMES, Synset, WordNet

PER_KIND = 110
TOP_K = 5
TEST_FRACTION = 0.2
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    """SQuAD's answer normalisation (the host's verifier uses the same rules)."""
    text = "".join(c for c in text.lower() if c not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def split_of(key: str) -> str:
    """``test`` for about :data:`TEST_FRACTION` of synsets, else ``train``.

    Salted: the visiting order is the unsalted hash, and must not decide the split.
    """
    bucket = int.from_bytes(hashlib.sha256(b"split:" + key.encode()).digest()[:8], "big") / 2**64
    return "test" if bucket < TEST_FRACTION else "train"


class Generator:
    """Candidate questions of every kind, and the checks that admit them."""

    def __init__(self, wn: WordNet, data: Path) -> None:
        self.wn = wn
        self.searcher = searchd.Searcher(str(data))
        self.db = searchd.connect(str(data))
        counts = Counter(normalize(s.definition) for s in wn.synsets.values())
        self.unique_definition = {k for k, s in wn.synsets.items()
                                  if counts[normalize(s.definition)] == 1}

    # ----------------------------------------------------------- helpers
    def text(self, doc_id: str) -> str:
        return self.db.execute("SELECT text FROM docs WHERE id = ?", (doc_id,)).fetchone()[0]

    def page_of(self, doc_id: str, sense: int | None, needle: str) -> int | None:
        """The page of ``doc_id`` where ``needle`` appears within sense ``sense``."""
        seen_header = sense is None
        header = f"#{sense} (" if sense is not None else ""
        for number, page in enumerate(searchd.pages(self.text(doc_id)), start=1):
            start = 0
            if not seen_header and (f"\n{header}" in page or page.startswith(header)):
                seen_header, start = True, page.find(header)
            if seen_header and needle in page[start:]:
                return number
        return None

    def findable(self, query: str, gold: list[str]) -> bool:
        results = self.searcher.search(query, TOP_K)["results"]
        return any(r["id"] in gold for r in results)

    def single(self, synset: Synset, symbol: str) -> Synset | None:
        targets = synset.targets(symbol)
        if len(targets) != 1 or (symbol == "@" and synset.targets("@i")):
            return None
        return self.wn.synsets[targets[0]]

    def good_definition(self, synset: Synset) -> bool:
        words = synset.definition.split()
        return synset.key in self.unique_definition and 5 <= len(words) <= 30

    def link_hop(self, synset: Synset, target: Synset, label: str) -> dict | None:
        """The hop that opens ``synset``'s first lemma and reads ``label: target``."""
        lemma = synset.lemmas[0]
        line = f"   {label}: {ref(self.wn, target.key)}"
        page = self.page_of(lemma, synset.senses.get(lemma), line)
        return None if page is None else {"doc_id": lemma, "page": page}

    # ------------------------------------------------------------- kinds
    def define(self, s: Synset) -> dict | None:
        if not self.good_definition(s) or not self.findable(s.definition, s.lemmas):
            return None
        hyper = self.single(s, "@")
        wrong = hyper.names()[0] if hyper else "entity"
        return self.task("define", s, f'Which word or phrase does the dictionary define as '
                         f'"{s.definition}"?', s.names(), wrong,
                         [{"query": s.definition, "doc_id": s.lemmas[0], "page": 1}])

    def relation(self, kind: str, symbol: str, label: str, s: Synset) -> dict | None:
        target = self.single(s, symbol)
        if target is None or not self.good_definition(s):
            return None
        word = s.names()[0]
        hop = self.link_hop(s, target, label)
        if hop is None:
            return None
        what = "a kind of" if symbol == "@" else "a part of"
        question = (f'In the dictionary, "{word}" has a sense defined as "{s.definition}". '
                    f'In that sense, what is "{word}" {what}?')
        return self.task(kind, s, question, target.names(), word,
                         [{"query": f"{word} {s.definition}", **hop}])

    def antonym(self, s: Synset) -> dict | None:
        pointers = [p for p in s.pointers if p.symbol == "!"]
        if len(pointers) != 1 or len(s.words) != 1 or not self.good_definition(s):
            return None
        if not self.findable(s.definition, s.lemmas):
            return None
        target = self.wn.synsets[pointers[0].target]
        answer = target.names()[pointers[0].target_word - 1]
        line = f"   opposite: {ref(self.wn, target.key, pointers[0].target_word)}"
        page = self.page_of(s.lemmas[0], s.senses.get(s.lemmas[0]), line)
        if page is None:
            return None
        question = (f"What is the opposite (antonym) of the {POS_NAMES[s.pos]} that the "
                    f'dictionary defines as "{s.definition}"?')
        return self.task("antonym", s, question, [answer], s.names()[0],
                         [{"query": s.definition, "doc_id": s.lemmas[0], "page": page}])

    def two_hop(self, kind: str, symbol: str, label: str, s: Synset) -> dict | None:
        middle = self.single(s, symbol)
        if middle is None or not self.good_definition(s):
            return None
        top = self.single(middle, "@")
        if top is None or not self.findable(s.definition, s.lemmas):
            return None
        first, second = self.link_hop(s, middle, label), self.link_hop(middle, top, "a kind of")
        if first is None or second is None:
            return None
        names = {normalize(n) for n in top.names()}
        first_docs = " ".join(normalize(self.text(lemma)) for lemma in s.lemmas)
        if any(re.search(rf"\b{re.escape(n)}\b", first_docs) for n in names):
            return None  # answerable from the first hop alone
        relation = "is a kind of something" if symbol == "@" else "is a part of something"
        question = (f'Find the word or phrase that the dictionary defines as "{s.definition}". '
                    f"It {relation}. What is that, in turn, a kind of?")
        return self.task(kind, s, question, top.names(), middle.names()[0],
                         [{"query": s.definition, **first}, second])

    def task(self, kind: str, s: Synset, question: str, answers: list[str], wrong: str,
             hops: list[dict]) -> dict | None:
        normal = {normalize(a) for a in answers}
        if "" in normal or normalize(wrong) in normal:
            return None
        if any(re.search(rf"\b{re.escape(a)}\b", normalize(question)) for a in normal):
            return None  # the question gives the answer away
        last = hops[-1]
        page = searchd.open_doc(self.db, last["doc_id"], last["page"])
        if not any(a.lower() in page.get("text", "").lower() for a in answers):
            return None  # the answer must be on the page the oracle reads
        return {
            "id": f"search-{kind}-{s.key.replace(':', '')}",
            "prompt": question,
            "data": {"answers": answers, "wrong": wrong, "hops": hops},
            "split": split_of(s.key),
            "metadata": {"kind": kind, "hops": len(hops), "pos": POS_NAMES[s.pos]},
        }


def generate(root: Path, data: Path) -> list[dict]:
    """Up to :data:`PER_KIND` checked tasks of each kind, in a fixed order."""
    gen = Generator(wordnet.load(root), data)
    makers = {
        "define": gen.define,
        "hypernym": lambda s: gen.relation("hypernym", "@", "a kind of", s),
        "part_of": lambda s: gen.relation("part_of", "#p", "part of", s),
        "antonym": gen.antonym,
        "hypernym2": lambda s: gen.two_hop("hypernym2", "@", "a kind of", s),
        "part_kind": lambda s: gen.two_hop("part_kind", "#p", "part of", s),
    }
    order = sorted(gen.wn.synsets, key=lambda k: hashlib.sha256(k.encode()).hexdigest())
    tasks = []
    for make in makers.values():
        made = 0
        for key in order:
            task = make(gen.wn.synsets[key])
            if task is not None:
                tasks.append(task)
                made += 1
                if made == PER_KIND:
                    break
    return tasks


if __name__ == "__main__":
    made = generate(Path(sys.argv[1]), Path(sys.argv[2]))
    with open(sys.argv[3], "w", encoding="utf-8") as out:
        for record in made:
            out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"make_tasks: {len(made)} tasks, {Counter(t['metadata']['kind'] for t in made)}")
