"""Plain text processing for the documents example (no AI): a document is read in
blocks, cut into chunks of words, and analysed with word frequencies (themes),
sentence scoring (quotes) and a few rules (insights). Memory stays bounded: only
counters and the best sentences are kept, never the whole text."""

from __future__ import annotations

import codecs
import heapq
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Bytes read from disk at a time.
BLOCK = 1 << 20
#: Words per chunk (what an embedding or AI call would take at once).
CHUNK_WORDS = 500
MAX_THEMES = 8
MAX_QUOTES = 25
MAX_INSIGHTS = 15

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers herself him himself his how
    i if in into is it its itself just me more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves one two may might must shall into upon us
    like get got make made many much well even still yet however""".split()  # noqa: SIM905
)
WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
#: Sentences that state a finding or ask for something: the rule-based insights.
SIGNAL = re.compile(
    r"\b(should|must|need(s|ed)?|recommend\w*|important|key|increase[sd]?|decrease[sd]?|"
    r"because|therefore|found|shows?|\d+(\.\d+)?\s?%)",
    re.IGNORECASE,
)


def read_text(path: Path, block: int = BLOCK) -> Iterator[tuple[str, int]]:
    """The file's text in blocks, with the bytes read so far. UTF-8 (a BOM is
    dropped); undecodable bytes become U+FFFD instead of failing the document."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    done = 0
    with path.open("rb") as fh:
        while data := fh.read(block):
            done += len(data)
            yield decoder.decode(data), done
    if tail := decoder.decode(b"", final=True):
        yield tail, done


@dataclass
class Analysis:
    """What is learnt from a document, fed block by block."""

    words: Counter[str] = field(default_factory=Counter)
    total_words: int = 0
    chunks: int = 0
    sentences: int = 0
    binary: int = 0  # replacement characters and control bytes: not a text file
    _carry: str = ""
    _chunk_fill: int = 0
    _candidates: list[str] = field(default_factory=list)
    _signals: list[str] = field(default_factory=list)

    def feed(self, text: str) -> None:
        self.binary += text.count("\ufffd") + sum(
            1 for ch in text if ch < " " and ch not in "\n\r\t\f"
        )
        parts = SENTENCE_END.split(self._carry + text)
        self._carry = parts.pop()  # may continue in the next block
        for sentence in parts:
            self._sentence(sentence)

    def finish(self) -> None:
        if self._carry.strip():
            self._sentence(self._carry)
        self._carry = ""
        if self._chunk_fill:
            self.chunks += 1
            self._chunk_fill = 0

    def _sentence(self, raw: str) -> None:
        sentence = " ".join(raw.split())
        if not sentence:
            return
        self.sentences += 1
        found = [w.lower() for w in WORD.findall(sentence)]
        self.total_words += len(found)
        self.words.update(w for w in found if len(w) > 3 and w not in STOPWORDS)
        self._chunk_fill += len(found)
        while self._chunk_fill >= CHUNK_WORDS:
            self.chunks += 1
            self._chunk_fill -= CHUNK_WORDS
        if 40 <= len(sentence) <= 300:
            # Candidates are ranked once the themes are known; keep a bounded pool.
            if len(self._candidates) < 2000:
                self._candidates.append(sentence)
            if SIGNAL.search(sentence) and len(self._signals) < 2000:
                self._signals.append(sentence)

    @property
    def is_text(self) -> bool:
        return self.total_words > 0 and self.binary * 100 <= self.total_words

    def themes(self) -> list[dict[str, Any]]:
        """The most frequent meaningful words (seen at least twice)."""
        return [
            {"theme": w, "mentions": n} for w, n in self.words.most_common(MAX_THEMES * 2) if n >= 2
        ][:MAX_THEMES]

    def quotes(self) -> list[str]:
        """The sentences densest in the document's themes, in document order."""
        weight = {str(t["theme"]): int(t["mentions"]) for t in self.themes()}

        def score(item: tuple[int, str]) -> float:
            found = [w.lower() for w in WORD.findall(item[1])]
            return sum(weight.get(w, 0) for w in found) / (len(found) or 1)

        best = heapq.nlargest(MAX_QUOTES, enumerate(self._candidates), key=score)
        return [s for _, s in sorted(t for t in best if score(t) > 0)]

    def signals(self) -> list[str]:
        """Sentences that state a finding or a recommendation, for the insights stage."""
        return self._signals[: MAX_INSIGHTS * 4]


def local_insights(signals: list[str]) -> list[str]:
    """Insights without AI: the first distinct signal sentences."""
    seen: set[str] = set()
    out: list[str] = []
    for sentence in signals:
        if sentence.lower() not in seen:
            seen.add(sentence.lower())
            out.append(sentence)
        if len(out) == MAX_INSIGHTS:
            break
    return out
