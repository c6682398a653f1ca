"""Context packs: load, version (content hash), chunk, index with bm25s (cached per hash), select.

Selection is pure given a token counter: the always-included documents come first, then the most
relevant chunks that still fit the budget. The rendered context never exceeds the budget.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import shutil
import threading
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DOC_SUFFIXES = (".md", ".txt")
CHUNK_WORDS = 220  # ≈300 tokens: small enough to pack several, big enough to stay self-contained
HASH_LEN = 12

TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class Document:
    path: str  # relative to the pack folder, POSIX separators
    title: str
    text: str


@dataclass(frozen=True)
class Chunk:
    doc: str
    title: str
    heading: str
    text: str

    def render(self) -> str:
        where = (
            f"{self.title} › {self.heading}" if self.heading and self.heading != self.title else self.title
        )
        return f"[{self.doc} — {where}]\n{self.text}"


@dataclass
class Pack:
    name: str
    description: str
    owner: str
    sensitive: bool
    channels: tuple[str, ...]
    always_include: tuple[str, ...]
    root: Path
    documents: tuple[Document, ...]
    hash: str
    redact_external: bool = False  # redact detectors from prompts with this pack sent to external tiers
    base_url: str | None = None  # where the documents are published (pack.toml `base_url`), for links
    _chunks: list[Chunk] | None = field(default=None, repr=False)
    _index: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def version(self) -> str:
        return self.hash

    def always_documents(self) -> list[Document]:
        by_path = {d.path: d for d in self.documents}
        return [by_path[p] for p in self.always_include if p in by_path]

    @property
    def chunks(self) -> list[Chunk]:
        """Retrievable chunks: every document except the always-included ones."""
        if self._chunks is None:
            always = set(self.always_include)
            self._chunks = [c for d in self.documents if d.path not in always for c in chunk_document(d)]
        return self._chunks


@dataclass(frozen=True)
class PackProblem:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


# ---------------------------------------------------------------------------------------------
# Loading and versioning


def pack_hash(root: Path, files: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:HASH_LEN]


def _title_of(text: str, fallback: str) -> str:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
        if line.strip():
            break
    return fallback


def load_pack(root: Path) -> Pack:
    """Load one pack folder; raises ValueError naming the problem."""
    meta_path = root / "pack.toml"
    if not meta_path.is_file():
        raise ValueError("missing pack.toml")
    try:
        meta = tomllib.loads(meta_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"broken pack.toml: {exc}") from exc
    name = meta.get("name", root.name)
    if not isinstance(name, str) or not name:
        raise ValueError("pack.toml: name must be a non-empty string")
    doc_files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in DOC_SUFFIXES)
    documents = []
    for path in doc_files:
        rel = path.relative_to(root).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{rel} is not UTF-8 text") from exc
        documents.append(Document(path=rel, title=_title_of(text, path.stem), text=text.strip()))
    always = meta.get("always_include", [])
    channels = meta.get("channels", [])
    if not isinstance(always, list) or not all(isinstance(a, str) for a in always):
        raise ValueError("pack.toml: always_include must be a list of document paths")
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise ValueError("pack.toml: channels must be a list of channel ids or names")
    known = {d.path for d in documents}
    missing = [a for a in always if a not in known]
    if missing:
        raise ValueError(f"pack.toml: always_include names missing document(s) {', '.join(missing)}")
    sensitive = meta.get("sensitive", False)
    if not isinstance(sensitive, bool):
        raise ValueError("pack.toml: sensitive must be true or false")
    redact_external = meta.get("redact_external", False)
    if not isinstance(redact_external, bool):
        raise ValueError("pack.toml: redact_external must be true or false")
    base_url = meta.get("base_url")
    if base_url is not None and (
        not isinstance(base_url, str) or not re.match(r"https?://[^\s/]+", base_url)
    ):
        raise ValueError("pack.toml: base_url must be an http(s) URL, e.g. https://handbook.example.com/")
    return Pack(
        name=name,
        description=str(meta.get("description", "")),
        owner=str(meta.get("owner", "")),
        sensitive=sensitive,
        channels=tuple(c.lstrip("#") for c in channels),
        always_include=tuple(always),
        root=root,
        documents=tuple(documents),
        hash=pack_hash(root, [meta_path, *doc_files]),
        redact_external=redact_external,
        base_url=base_url,
    )


def load_packs(dirs: Iterable[Path]) -> tuple[dict[str, Pack], list[PackProblem]]:
    """Every pack folder under the given directories; broken ones are skipped with a warning."""
    packs: dict[str, Pack] = {}
    problems: list[PackProblem] = []
    for base in dirs:
        if not base.is_dir():
            continue
        for root in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            try:
                pack = load_pack(root)
            except (ValueError, OSError) as exc:
                problems.append(PackProblem(str(root / "pack.toml"), str(exc)))
                log.warning("context pack skipped: %s: %s", root / "pack.toml", exc)
                continue
            if pack.name in packs:
                problems.append(PackProblem(str(root / "pack.toml"), f"duplicate pack name {pack.name!r}"))
                continue
            packs[pack.name] = pack
    return packs, problems


# ---------------------------------------------------------------------------------------------
# Chunking

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")


def chunk_document(doc: Document, max_words: int = CHUNK_WORDS) -> list[Chunk]:
    """Split by headings, then by paragraphs so no chunk is much over `max_words`."""
    sections: list[tuple[str, list[str]]] = []
    heading = doc.title
    lines: list[str] = []
    for line in doc.text.splitlines():
        match = _HEADING.match(line)
        if match:
            if any(s.strip() for s in lines):
                sections.append((heading, lines))
            heading = match.group(2).strip() if len(match.group(1)) > 1 else doc.title
            lines = []
        else:
            lines.append(line)
    if any(s.strip() for s in lines):
        sections.append((heading, lines))

    chunks: list[Chunk] = []
    for heading, body in sections:
        paragraphs = [
            piece
            for p in "\n".join(body).split("\n\n")
            if p.strip()
            for piece in _split_long(p.strip(), max_words)
        ]
        current: list[str] = []
        words = 0
        for para in paragraphs:
            n = len(para.split())
            if current and words + n > max_words:
                chunks.append(Chunk(doc.path, doc.title, heading, "\n\n".join(current)))
                current, words = [], 0
            current.append(para)
            words += n
        if current:
            chunks.append(Chunk(doc.path, doc.title, heading, "\n\n".join(current)))
    return chunks


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _split_long(paragraph: str, max_words: int) -> list[str]:
    """A paragraph over the chunk size is cut at sentence ends, and at words when a sentence is too long."""
    if len(paragraph.split()) <= max_words:
        return [paragraph]
    pieces: list[str] = []
    current: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        words = sentence.split()
        while len(words) > max_words:  # a run-on "sentence" (or a text file without punctuation)
            if current:
                pieces.append(" ".join(current))
                current = []
            pieces.append(" ".join(words[:max_words]))
            words = words[max_words:]
        if current and len(current) + len(words) > max_words:
            pieces.append(" ".join(current))
            current = []
        current.extend(words)
    if current:
        pieces.append(" ".join(current))
    return pieces


# ---------------------------------------------------------------------------------------------
# Index (bm25s), cached on disk per pack hash


def _bm25s() -> Any:
    import bm25s

    # bm25s sets its own logger to DEBUG on import; keep index builds out of users' terminals.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def _tokenize(texts: list[str]) -> list[list[str]]:
    return _bm25s().tokenize(texts, stopwords="en", show_progress=False, return_ids=False)


def index_dir(cache_dir: Path, pack: Pack) -> Path:
    return cache_dir / "packs" / f"{pack.name}-{pack.hash}"


def load_index(pack: Pack, cache_dir: Path | None) -> Any:
    """The bm25s retriever for the pack: from the disk cache when the hash matches, else built."""
    bm25s = _bm25s()

    with pack._lock:
        if pack._index is not None:
            return pack._index
        texts = [f"{c.title} {c.heading}\n{c.text}" for c in pack.chunks]
        target = index_dir(cache_dir, pack) if cache_dir else None
        if target is not None and (target / "params.index.json").is_file():
            meta = (
                json.loads((target / "chunks.json").read_text()) if (target / "chunks.json").is_file() else {}
            )
            if meta.get("count") == len(texts):
                pack._index = bm25s.BM25.load(str(target))
                return pack._index
        retriever = bm25s.BM25()
        if texts:
            retriever.index(_tokenize(texts), show_progress=False)
        if target is not None and texts:
            _save_index(retriever, target, pack, len(texts))
        pack._index = retriever
        return retriever


def _save_index(retriever: Any, target: Path, pack: Pack, count: int) -> None:
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True, exist_ok=True)
    retriever.save(str(tmp))
    (tmp / "chunks.json").write_text(json.dumps({"pack": pack.name, "hash": pack.hash, "count": count}))
    # Drop indexes of older versions of this pack (exactly "<name>-<hash>": not a pack whose name
    # merely starts with ours), and a stale copy of this version, then publish atomically.
    own = re.compile(rf"{re.escape(pack.name)}-[0-9a-f]{{{HASH_LEN}}}")
    for old in target.parent.iterdir():
        if old != tmp and own.fullmatch(old.name):
            shutil.rmtree(old, ignore_errors=True)
    try:
        tmp.rename(target)
    except OSError:  # another process published it first
        shutil.rmtree(tmp, ignore_errors=True)


def rank_chunks(pack: Pack, query: str, cache_dir: Path | None, k: int = 24) -> list[tuple[Chunk, float]]:
    """The pack's chunks most relevant to the query, best first (zero-score chunks dropped)."""
    chunks = pack.chunks
    if not chunks or not query.strip():
        return []
    retriever = load_index(pack, cache_dir)
    tokens = _tokenize([query])
    if not tokens or not tokens[0]:
        return []
    ids, scores = retriever.retrieve(tokens, k=min(k, len(chunks)), show_progress=False)
    return [(chunks[int(i)], float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]


# ---------------------------------------------------------------------------------------------
# Selection under a token budget


@dataclass(frozen=True)
class Selection:
    text: str
    tokens: int
    sources: tuple[str, ...]  # document paths used, in order
    pieces: tuple[str, ...]
    trimmed_always: bool = False


def _trim_to(text: str, budget: int, count: TokenCounter) -> str:
    """The longest prefix (by words) that fits the budget."""
    words = text.split(" ")
    lo, hi = 0, len(words)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(" ".join(words[:mid])) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo])


SEPARATOR = "\n\n"


def select_context(
    packs: Sequence[Pack],
    query: str,
    budget: int,
    count: TokenCounter,
    cache_dir: Path | None = None,
) -> Selection:
    """Always-included documents first, then the best chunks (round-robin across packs) that fit."""
    pieces: list[str] = []
    sources: list[str] = []
    used = 0
    trimmed = False

    def fits(piece: str) -> int | None:
        cost = count(piece + SEPARATOR)
        return cost if used + cost <= budget else None

    for pack in packs:
        for doc in pack.always_documents():
            piece = f"[{doc.path} — {doc.title}]\n{doc.text}"
            cost = fits(piece)
            if cost is None:
                remaining = budget - used - count(SEPARATOR) - 2
                if remaining <= 0:
                    trimmed = True
                    continue
                piece = _trim_to(piece, remaining, count)
                trimmed = True
                cost = fits(piece)
                if cost is None or not piece:
                    continue
            pieces.append(piece)
            sources.append(doc.path)
            used += cost

    ranked = [rank_chunks(pack, query, cache_dir) for pack in packs]
    for rank in range(max((len(r) for r in ranked), default=0)):
        for per_pack in ranked:
            if rank >= len(per_pack):
                continue
            piece = per_pack[rank][0].render()
            cost = fits(piece)
            if cost is None:
                continue  # a smaller, slightly less relevant chunk may still fit
            pieces.append(piece)
            used += cost
            source = per_pack[rank][0].doc
            if source not in sources:
                sources.append(source)

    text = SEPARATOR.join(pieces)
    total = count(text) if text else 0
    # Token counts are not exactly additive across boundaries; drop from the end if ever over.
    while pieces and total > budget:
        pieces.pop()
        text = SEPARATOR.join(pieces)
        total = count(text) if text else 0
    kept_docs = {p.split(" — ", 1)[0].lstrip("[") for p in pieces}
    return Selection(
        text=text,
        tokens=total,
        sources=tuple(s for s in sources if s in kept_docs),
        pieces=tuple(pieces),
        trimmed_always=trimmed,
    )


# ---------------------------------------------------------------------------------------------
# Tier-aware selection: what a tier can actually use


@dataclass(frozen=True)
class Citation:
    """One document section given to the model: shown under the answer as its source."""

    pack: str
    doc: str
    title: str
    section: str = ""  # the heading(s) used; "" when the whole document was used
    url: str | None = None

    @property
    def label(self) -> str:
        return f"{self.title} › {self.section}" if self.section and self.section != self.title else self.title


@dataclass(frozen=True)
class TieredSelection(Selection):
    citations: tuple[Citation, ...] = ()
    chunks: int = 0  # retrieved sections used (the always-included part not counted)
    always_tokens: int = 0  # tokens taken by the always-included part
    best_score: float = 0.0  # BM25 score of the best section (0: nothing matched)
    coverage: float = 0.0  # share of the query's weighted terms the best section contains
    closest: tuple[Citation, ...] = ()  # the best-ranked documents, one per document


def _slug(heading: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", heading.lower()).strip().replace(" ", "-")


def cite(pack: Pack, doc: str, title: str, section: str = "") -> Citation:
    url = None
    if pack.base_url:
        url = f"{pack.base_url.rstrip('/')}/{doc}"
        if section and section != title and " · " not in section:
            url += f"#{_slug(section)}"
    return Citation(pack.name, doc, title, section, url)


def _terms(text: str) -> list[str]:
    tokens = _tokenize([text])
    return list(tokens[0]) if tokens else []


_DOC_FREQ: dict[tuple[str, str], tuple[int, dict[str, int]]] = {}


def _doc_freq(pack: Pack) -> tuple[int, dict[str, int]]:
    """(chunk count, term → chunks containing it), computed once per pack version."""
    key = (pack.name, pack.hash)
    if key not in _DOC_FREQ:
        freq: dict[str, int] = {}
        for c in pack.chunks:
            for term in set(_terms(f"{c.title} {c.heading}\n{c.text}")):
                freq[term] = freq.get(term, 0) + 1
        _DOC_FREQ[key] = (len(pack.chunks), freq)
    return _DOC_FREQ[key]


def query_coverage(pack: Pack, query: str, chunk: Chunk) -> float:
    """How much of the question the chunk speaks to: the share of the query's terms it contains,
    each weighted by rarity in the pack (a term no document uses weighs most: it is what is asked)."""
    terms = set(_terms(query))
    if not terms:
        return 0.0
    n, freq = _doc_freq(pack)

    def weight(term: str) -> float:
        return math.log((n + 1) / (freq.get(term, 0) + 0.5))

    inside = set(_terms(f"{chunk.title} {chunk.heading}\n{chunk.text}"))
    total = sum(weight(t) for t in terms)
    return sum(weight(t) for t in terms if t in inside) / total if total > 0 else 0.0


def _trim_lines(text: str, budget: int, count: TokenCounter) -> str:
    """The longest prefix, whole lines first (then words), that fits the budget."""
    if count(text) <= budget:
        return text
    lines = text.split("\n")
    kept: list[str] = []
    for line in lines:
        if count("\n".join([*kept, line])) > budget:
            # This line does not fit whole: keep the words of it that do.
            head = "\n".join(kept)
            rest = budget - (count(head + "\n") if kept else 0)
            part = _trim_to(line, rest, count) if rest > 0 else ""
            return f"{head}\n{part}" if kept and part else (head or part)
        kept.append(line)
    return "\n".join(kept)


# Words that shape a question but say nothing about its topic (bm25s's stopwords keep them).
QUESTION_WORDS = frozenset(
    [
        "how",
        "what",
        "who",
        "whom",
        "when",
        "where",
        "why",
        "which",
        "do",
        "does",
        "did",
        "can",
        "could",
        "get",
        "i",
        "my",
        "me",
        "we",
        "our",
    ]
)


def _always_excerpt(
    pack: Pack, doc: Document, query: str, cap: int, count: TokenCounter
) -> tuple[str, str] | None:
    """The always-included document within `cap` tokens: whole when it fits, else its sections most
    related to the question (in document order), else the best one cut at a line. (text, sections)."""
    whole = f"[{doc.path} — {doc.title}]\n{doc.text}"
    if count(whole + SEPARATOR) <= cap:
        return whole, ""
    sections = chunk_document(doc)
    if not sections:
        return None
    terms = set(_terms(query)) - QUESTION_WORDS
    n, freq = _doc_freq(pack)

    def score(i: int) -> float:
        inside = set(_terms(f"{sections[i].heading}\n{sections[i].text}"))
        return sum(math.log((n + 1) / (freq.get(t, 0) + 0.5)) for t in terms & inside)

    # Most related first; ties keep document order, so the opening (usually a summary) leads.
    scored = sorted(range(len(sections)), key=lambda i: (-score(i), i))
    best = sections[scored[0]]
    if count(best.render() + SEPARATOR) > cap:
        # The most related section, cut at a line, beats a less related one that happens to fit.
        text = _trim_lines(best.render(), cap - count(SEPARATOR) - 2, count)
        if count(text) < 12 or "\n" not in text:  # only the header line left: not worth sending
            return None
        return text, best.heading
    chosen: list[int] = []
    used = 0
    for i in scored:
        cost = count(sections[i].render() + SEPARATOR)
        if used + cost <= cap:
            chosen.append(i)
            used += cost
    chosen.sort()
    text = SEPARATOR.join(sections[i].render() for i in chosen)
    return text, " · ".join(sections[i].heading for i in chosen)


def select_tiered(
    packs: Sequence[Pack],
    query: str,
    budget: int,
    count: TokenCounter,
    cache_dir: Path | None = None,
    max_chunks: int = 8,
    always_share: float = 0.6,
) -> TieredSelection:
    """Context a tier can use: the best sections first (at most `max_chunks`), then the
    always-included documents kept to `always_share` of the budget (a relevant section of them,
    not the whole document, when they are larger than that). Never over `budget` tokens."""
    budget = max(0, budget)
    ranked = [(pack, rank_chunks(pack, query, cache_dir)) for pack in packs]
    order: list[tuple[Pack, Chunk, float]] = []
    for rank in range(max((len(r) for _, r in ranked), default=0)):
        for pack, per_pack in ranked:
            if rank < len(per_pack):
                order.append((pack, *per_pack[rank]))
    always_cap = int(budget * max(0.0, min(1.0, always_share)))
    wanted = sum(
        count(f"[{d.path} — {d.title}]\n{d.text}" + SEPARATOR) for p in packs for d in p.always_documents()
    )
    chunk_budget = budget - min(always_cap, wanted)

    pieces: list[str] = []
    cites: list[Citation] = []
    used = 0
    for index, (pack, chunk, _) in enumerate(order):
        if len(pieces) >= max_chunks:
            break
        piece = chunk.render()
        cost = count(piece + SEPARATOR)
        if used + cost > chunk_budget:
            if index != 0:
                continue  # a smaller, slightly less relevant section may still fit
            # The best section leads even when it must be cut to fit.
            piece = _trim_lines(piece, chunk_budget - count(SEPARATOR) - 2, count)
            cost = count(piece + SEPARATOR)
            if "\n" not in piece or used + cost > chunk_budget:
                continue
        pieces.append(piece)
        cites.append(cite(pack, chunk.doc, chunk.title, chunk.heading))
        used += cost
    chunk_count = len(pieces)

    always_used = 0
    room = min(always_cap, budget - used)
    for pack in packs:
        for doc in pack.always_documents():
            excerpt = _always_excerpt(pack, doc, query, room - always_used, count)
            if excerpt is None:
                continue
            text, section = excerpt
            cost = count(text + SEPARATOR)
            pieces.append(text)
            cites.append(cite(pack, doc.path, doc.title, section))
            always_used += cost

    text = SEPARATOR.join(pieces)
    total = count(text) if text else 0
    while pieces and total > budget:  # token counts are not exactly additive across boundaries
        pieces.pop()
        cites.pop()
        text = SEPARATOR.join(pieces)
        total = count(text) if text else 0
    chunk_count = min(chunk_count, len(pieces))
    best_pack, best_chunk, best_score = order[0] if order else (None, None, 0.0)
    closest: list[Citation] = []
    for pack, chunk, _ in order:
        if all(c.doc != chunk.doc for c in closest):
            closest.append(cite(pack, chunk.doc, chunk.title))
        if len(closest) == 3:
            break
    sources = tuple(dict.fromkeys(c.doc for c in cites))
    return TieredSelection(
        text=text,
        tokens=total,
        sources=sources,
        pieces=tuple(pieces),
        trimmed_always=any(c.section for c in cites[chunk_count:]),
        citations=tuple(cites),
        chunks=chunk_count,
        always_tokens=min(always_used, total),
        best_score=best_score,
        coverage=query_coverage(best_pack, query, best_chunk) if best_pack and best_chunk else 0.0,
        closest=tuple(closest),
    )


def oversized_always(
    packs: Iterable[Pack], budgets: dict[str, int], count: Callable[[str, str], int]
) -> list[str]:
    """Warnings for always-included documents larger than a tier's whole context budget.

    `budgets` maps tier → context tokens; `count(tier, text)` counts with that tier's tokenizer."""
    warnings = []
    for pack in packs:
        for doc in pack.always_documents():
            over = []
            for tier, budget in budgets.items():
                size = count(tier, f"[{doc.path} — {doc.title}]\n{doc.text}")
                if size > budget:
                    over.append(f"{tier} ({budget})")
            if over:
                warnings.append(
                    f"pack {pack.name}: always-included {doc.path} is larger than the whole context "
                    f"budget (tokens) of tier {', '.join(over)}; only its most relevant section is used there"
                )
    return warnings


def builtin_packs_dir() -> Path:
    here = Path(__file__).resolve().parent.parent  # bot/
    for candidate in (here.parent / "context_packs", here / "_data" / "context_packs"):
        if candidate.is_dir():
            return candidate
    return here.parent / "context_packs"
