"""Context packs: chunking, content hash, the bm25s index cache, broken packs, selection under a budget."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from bot.context.packs import (
    CHUNK_WORDS,
    Document,
    builtin_packs_dir,
    chunk_document,
    index_dir,
    load_index,
    load_pack,
    load_packs,
    rank_chunks,
    select_context,
)


def write_pack(base: Path, name: str, docs: dict[str, str], toml: str | None = None) -> Path:
    root = base / name
    root.mkdir(parents=True, exist_ok=True)
    if toml is None:
        toml = f'name = "{name}"\ndescription = "test pack {name}"\nowner = "qa@example.com"\n'
    (root / "pack.toml").write_text(toml, encoding="utf-8")
    for rel, text in docs.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def words(text: str) -> int:
    return len(text.split())


@pytest.fixture(scope="module")
def real_count():
    """The same counter the engine uses for a tier (litellm's tokenizer)."""
    from bot.models.llm import token_counter

    return token_counter("gpt-4o-mini")


FILLER = (
    "Employees should read the relevant policy page before asking the help desk, and keep "
    "their managers informed about anything that affects delivery dates or customer commitments."
)

HELP_DOCS = {
    "about.md": "# About Acme\n\nAcme Widgets builds industrial widgets. Our help desk lives in #it-help. "
    + FILLER,
    "it/vpn.md": "# VPN access\n\n## Requesting access\n\nTo get VPN access, file a ticket in the IT portal "
    "choosing 'VPN access'. Install the WireGuard client and import the profile from the portal.\n\n"
    "## Troubleshooting\n\nIf the VPN tunnel drops, restart WireGuard and check your MFA token.\n",
    "hr/leave.md": "# Annual leave\n\n## Allowance\n\nEveryone gets 27 days of annual leave plus public holidays. "
    "Book leave in BambooHR at least two weeks ahead.\n\n## Carry over\n\nUp to 5 days carry over to March.\n",
    "office/printers.md": "# Printers\n\nPrinters are on every floor. Use the badge reader to release jobs. "
    + FILLER,
    "travel/hotels.md": "# Hotels\n\n## Caps\n\nThe hotel cap is 180 EUR a night in Paris and 220 USD in "
    "Toronto. Book through Navan.\n",
}
HELP_TOML = 'name = "it-help"\ndescription = "help"\nalways_include = ["about.md"]\n'


@pytest.fixture
def help_pack(tmp_path: Path):
    write_pack(tmp_path / "packs", "it-help", HELP_DOCS, HELP_TOML)
    return load_pack(tmp_path / "packs" / "it-help")


# ---------------------------------------------------------------------------------------------
# Loading and chunking


def test_load_pack_reads_metadata_and_documents(help_pack) -> None:
    assert help_pack.name == "it-help"
    assert help_pack.always_include == ("about.md",)
    assert [d.path for d in help_pack.documents] == sorted(HELP_DOCS)
    titles = {d.path: d.title for d in help_pack.documents}
    assert titles["it/vpn.md"] == "VPN access"
    assert titles["about.md"] == "About Acme"
    assert len(help_pack.hash) == 12
    assert help_pack.version == help_pack.hash
    # Always-included documents are not retrievable chunks (they are always there already).
    assert all(c.doc != "about.md" for c in help_pack.chunks)
    assert [d.path for d in help_pack.always_documents()] == ["about.md"]


def test_title_falls_back_to_file_stem(tmp_path: Path) -> None:
    write_pack(tmp_path, "p", {"no-heading.md": "Just text.\n\n# Late heading\n", "notes.txt": "plain"})
    pack = load_pack(tmp_path / "p")
    titles = {d.path: d.title for d in pack.documents}
    assert titles == {"no-heading.md": "no-heading", "notes.txt": "notes"}


def test_only_md_and_txt_are_documents(tmp_path: Path) -> None:
    root = write_pack(tmp_path, "p", {"a.md": "# A\n\ntext", "b.txt": "b text"})
    (root / "diagram.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (root / "data.json").write_text("{}")
    assert [d.path for d in load_pack(root).documents] == ["a.md", "b.txt"]


def test_chunking_by_heading() -> None:
    doc = Document(
        "guide.md",
        "Guide",
        "# Guide\n\nIntro paragraph.\n\n## Install\n\nStep one.\n\nStep two.\n\n### Details\n\nMore detail.\n"
        "\n## Empty\n\n## Use\n\nUse it.",
    )
    chunks = chunk_document(doc)
    assert [(c.heading, c.text) for c in chunks] == [
        ("Guide", "Intro paragraph."),
        ("Install", "Step one.\n\nStep two."),
        ("Details", "More detail."),
        ("Use", "Use it."),
    ]
    assert all(c.doc == "guide.md" and c.title == "Guide" for c in chunks)
    assert chunks[1].render() == "[guide.md — Guide › Install]\nStep one.\n\nStep two."
    assert chunks[0].render() == "[guide.md — Guide]\nIntro paragraph."


def test_chunking_splits_long_sections_by_paragraph() -> None:
    paragraphs = [" ".join(f"p{i}w{j}" for j in range(100)) for i in range(5)]
    doc = Document("long.md", "Long", "# Long\n\n## Section\n\n" + "\n\n".join(paragraphs))
    chunks = chunk_document(doc, max_words=220)
    assert [words(c.text) for c in chunks] == [200, 200, 100]
    assert all(c.heading == "Section" for c in chunks)
    # Nothing lost, nothing reordered.
    assert "\n\n".join(c.text for c in chunks) == "\n\n".join(paragraphs)


def test_chunk_size_is_bounded_even_for_one_long_paragraph() -> None:
    """The contract: 'no chunk is much over max_words'. A .txt file without blank lines is one
    paragraph; if it stays one chunk it is larger than any context budget and never retrievable."""
    text = " ".join(f"w{i}" for i in range(5 * CHUNK_WORDS))
    chunks = chunk_document(Document("wall.txt", "wall", text))
    assert " ".join(c.text for c in chunks).split() == text.split()
    assert max(words(c.text) for c in chunks) <= 2 * CHUNK_WORDS


# ---------------------------------------------------------------------------------------------
# Content hash


def test_hash_is_stable_and_location_independent(tmp_path: Path) -> None:
    root = write_pack(tmp_path / "a", "it-help", HELP_DOCS, HELP_TOML)
    first = load_pack(root).hash
    assert load_pack(root).hash == first
    copy = tmp_path / "b" / "it-help"
    shutil.copytree(root, copy)
    assert load_pack(copy).hash == first


@pytest.mark.parametrize(
    "change",
    ["edit-doc", "edit-toml", "add-doc", "remove-doc", "rename-doc", "add-txt"],
)
def test_hash_changes_when_any_document_or_pack_toml_changes(tmp_path: Path, change: str) -> None:
    root = write_pack(tmp_path, "it-help", HELP_DOCS, HELP_TOML)
    before = load_pack(root).hash
    if change == "edit-doc":
        (root / "it/vpn.md").write_text(HELP_DOCS["it/vpn.md"] + "\nOne more line.\n")
    elif change == "edit-toml":
        (root / "pack.toml").write_text(HELP_TOML + 'owner = "someone-else"\n')
    elif change == "add-doc":
        (root / "it/new.md").write_text("# New\n\nnew doc")
    elif change == "remove-doc":
        (root / "travel/hotels.md").unlink()
    elif change == "rename-doc":
        (root / "office/printers.md").rename(root / "office/printing.md")
    elif change == "add-txt":
        (root / "notes.txt").write_text("notes")
    assert load_pack(root).hash != before


def test_hash_unchanged_by_rewrites_or_non_documents(tmp_path: Path) -> None:
    root = write_pack(tmp_path, "it-help", HELP_DOCS, HELP_TOML)
    before = load_pack(root).hash
    (root / "it/vpn.md").write_text(HELP_DOCS["it/vpn.md"])  # same bytes, new mtime
    (root / "logo.png").write_bytes(b"\x89PNG")
    (root / ".hidden").write_text("x")
    assert load_pack(root).hash == before


# ---------------------------------------------------------------------------------------------
# Index cache


def _tree(path: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(path).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in sorted(path.rglob("*"))
    }


def test_index_is_cached_on_disk_per_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bm25s

    builds: list[int] = []
    original = bm25s.BM25.index

    def counting_index(self, *args, **kwargs):
        builds.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(bm25s.BM25, "index", counting_index)

    root = write_pack(tmp_path / "packs", "it-help", HELP_DOCS, HELP_TOML)
    cache = tmp_path / "cache"
    pack = load_pack(root)
    target = index_dir(cache, pack)
    assert target == cache / "packs" / f"it-help-{pack.hash}"
    assert not target.exists()

    first = rank_chunks(pack, "How do I get VPN access?", cache)
    assert len(builds) == 1
    assert (target / "params.index.json").is_file()
    assert (target / "chunks.json").is_file()
    snapshot = _tree(cache)
    parent_mtime = (cache / "packs").stat().st_mtime_ns

    # A fresh load of the unchanged pack (e.g. after a restart) reads the cache, does not rebuild.
    again = load_pack(root)
    assert again.hash == pack.hash
    second = rank_chunks(again, "How do I get VPN access?", cache)
    assert len(builds) == 1
    assert _tree(cache) == snapshot
    assert (cache / "packs").stat().st_mtime_ns == parent_mtime
    assert [(c.doc, c.heading) for c, _ in second] == [(c.doc, c.heading) for c, _ in first]
    assert [s for _, s in second] == pytest.approx([s for _, s in first])

    # The same Pack object keeps its index in memory.
    rank_chunks(again, "annual leave", cache)
    assert len(builds) == 1

    # Changing the pack rebuilds under the new hash and drops the old version.
    (root / "it/vpn.md").write_text(HELP_DOCS["it/vpn.md"] + "\n## Split tunnelling\n\nNot allowed.\n")
    changed = load_pack(root)
    assert changed.hash != pack.hash
    ranked = rank_chunks(changed, "split tunnelling", cache)
    assert len(builds) == 2
    assert ranked[0][0].heading == "Split tunnelling"
    assert index_dir(cache, changed).is_dir()
    assert not target.exists()
    assert sorted(p.name for p in (cache / "packs").iterdir()) == [f"it-help-{changed.hash}"]


def test_stale_index_cache_is_replaced_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cached index that no longer matches the chunks (e.g. after an upgrade changed chunking while
    the pack stayed the same) is rebuilt once and the cache refreshed, not rebuilt on every start."""
    import json

    import bm25s

    builds: list[int] = []
    original = bm25s.BM25.index

    def counting_index(self, *args, **kwargs):
        builds.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(bm25s.BM25, "index", counting_index)
    root = write_pack(tmp_path / "packs", "it-help", HELP_DOCS, HELP_TOML)
    cache = tmp_path / "cache"
    pack = load_pack(root)
    load_index(pack, cache)
    meta_path = index_dir(cache, pack) / "chunks.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "count": meta["count"] + 7}))  # as if chunked differently

    load_index(load_pack(root), cache)
    assert len(builds) == 2  # the mismatch is noticed and the index rebuilt
    load_index(load_pack(root), cache)
    assert len(builds) == 2, "the rebuilt index was not saved: every start rebuilds it"
    assert json.loads(meta_path.read_text())["count"] == len(pack.chunks)


def test_index_cache_of_one_pack_survives_another_whose_name_is_a_prefix(tmp_path: Path) -> None:
    """Packs `alpha` and `alpha-beta` must not delete each other's cached index."""
    docs = {"doc.md": "# Doc\n\n## VPN\n\nvpn access request form\n\n## Leave\n\nannual leave days\n"}
    write_pack(tmp_path / "packs", "alpha", docs)
    write_pack(tmp_path / "packs", "alpha-beta", docs)
    packs, problems = load_packs([tmp_path / "packs"])
    assert problems == []
    cache = tmp_path / "cache"
    load_index(packs["alpha-beta"], cache)
    load_index(packs["alpha"], cache)
    assert index_dir(cache, packs["alpha"]).is_dir()
    assert index_dir(cache, packs["alpha-beta"]).is_dir()


# ---------------------------------------------------------------------------------------------
# Broken packs


@pytest.mark.parametrize(
    ("name", "toml", "docs", "reason"),
    [
        ("no-toml", None, {"a.md": "# A\n\ntext"}, "missing pack.toml"),
        ("bad-toml", 'name = "bad-toml\nalways_include = [', {"a.md": "# A"}, "broken pack.toml"),
        ("bad-always", 'name = "bad-always"\nalways_include = ["intro.md"]\n', {"a.md": "# A"}, "intro.md"),
        ("bad-types", 'name = "bad-types"\nalways_include = "a.md"\n', {"a.md": "# A"}, "always_include"),
        ("bad-sensitive", 'name = "bad-sensitive"\nsensitive = "yes"\n', {"a.md": "# A"}, "sensitive"),
    ],
)
def test_broken_pack_is_skipped_with_a_warning_naming_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str, toml: str | None, docs: dict, reason: str
) -> None:
    base = tmp_path / "packs"
    write_pack(base, "good-one", {"g.md": "# Good\n\nfine"})
    root = write_pack(base, name, docs, toml or "")
    if toml is None:
        (root / "pack.toml").unlink()
    write_pack(base, "zz-good", {"z.md": "# Zed\n\nfine"})
    with caplog.at_level(logging.WARNING, logger="bot.context.packs"):
        packs, problems = load_packs([base])
    assert sorted(packs) == ["good-one", "zz-good"]
    assert len(problems) == 1
    assert problems[0].path == str(root / "pack.toml")
    assert reason in problems[0].reason
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(root / "pack.toml") in w and reason in w for w in warnings), warnings


def test_non_utf8_document_and_duplicate_name_are_reported(tmp_path: Path) -> None:
    base = tmp_path / "packs"
    root = write_pack(base, "latin", {"ok.md": "# ok"})
    (root / "bad.md").write_bytes("caf\xe9".encode("latin-1"))
    write_pack(base, "one", {"a.md": "# A"}, 'name = "same"\n')
    write_pack(base, "two", {"b.md": "# B"}, 'name = "same"\n')
    packs, problems = load_packs([base, tmp_path / "does-not-exist"])
    assert sorted(packs) == ["same"]
    assert packs["same"].root == base / "one"
    reasons = {p.path: p.reason for p in problems}
    assert "bad.md is not UTF-8 text" in reasons[str(base / "latin" / "pack.toml")]
    assert "duplicate pack name 'same'" in reasons[str(base / "two" / "pack.toml")]


def test_builtin_packs_load_without_problems() -> None:
    packs, problems = load_packs([builtin_packs_dir()])
    assert "company-handbook" in packs
    assert problems == []
    for pack in packs.values():
        assert pack.documents, pack.name
        assert set(pack.always_include) <= {d.path for d in pack.documents}


# ---------------------------------------------------------------------------------------------
# Selection


QUERIES = [
    "How do I get VPN access?",
    "how many days of annual leave",
    "hotel cap in Toronto",
    "printer badge",
    "",
    "zzzz qqqq",
]
BUDGETS = [0, 1, 10, 50, 100, 300, 1000, 5000]


@pytest.mark.parametrize("budget", BUDGETS)
def test_selection_never_exceeds_budget(help_pack, tmp_path: Path, real_count, budget: int) -> None:
    for query in QUERIES:
        for count in (real_count, words):
            sel = select_context([help_pack], query, budget, count, tmp_path / "cache")
            assert sel.tokens <= budget, (query, budget)
            assert count(sel.text) <= budget, (query, budget)
            assert sel.tokens == (count(sel.text) if sel.text else 0)
            assert sel.text == "\n\n".join(sel.pieces)


@pytest.mark.parametrize("budget", [0, 50, 100, 300, 1000, 1500, 5000])
def test_selection_within_budget_on_the_builtin_handbook(tmp_path: Path, real_count, budget: int) -> None:
    packs, _ = load_packs([builtin_packs_dir()])
    handbook = packs["company-handbook"]
    for query in ("How do I get VPN access?", "Who do I page for a SEV1 at night?", "expense a monitor"):
        sel = select_context([handbook], query, budget, real_count, tmp_path / "cache")
        assert sel.tokens <= budget
        assert real_count(sel.text) <= budget


def test_always_included_document_comes_first_then_most_relevant(help_pack, real_count) -> None:
    sel = select_context([help_pack], "How do I get VPN access?", 5000, real_count)
    assert sel.pieces[0].startswith("[about.md — About Acme]\n")
    assert sel.pieces[1].startswith("[it/vpn.md — VPN access › Requesting access]")
    assert sel.sources[:2] == ("about.md", "it/vpn.md")
    assert not sel.trimmed_always
    # Every document path in the sources is actually in the text, and vice versa.
    for source in sel.sources:
        assert f"[{source} — " in sel.text


@pytest.mark.parametrize(
    ("query", "doc", "heading"),
    [
        ("How do I get VPN access?", "it/vpn.md", "Requesting access"),
        ("the VPN tunnel keeps dropping", "it/vpn.md", "Troubleshooting"),
        ("How many days of annual leave do I get?", "hr/leave.md", "Allowance"),
        ("What is the hotel cap in Toronto?", "travel/hotels.md", "Caps"),
    ],
)
def test_most_relevant_chunk_is_selected_under_a_tight_budget(
    help_pack, real_count, query: str, doc: str, heading: str
) -> None:
    about = real_count(f"[about.md — About Acme]\n{help_pack.always_documents()[0].text}\n\n")
    best = next(c for c in help_pack.chunks if c.doc == doc and c.heading == heading)
    budget = about + real_count(best.render() + "\n\n") + 5  # room for exactly the best chunk
    sel = select_context([help_pack], query, budget, real_count)
    assert sel.tokens <= budget
    assert sel.pieces[0].startswith("[about.md")
    assert best.render() in sel.pieces
    assert doc in sel.sources


def test_always_document_is_trimmed_when_it_alone_exceeds_the_budget(help_pack, real_count) -> None:
    sel = select_context([help_pack], "VPN", 30, real_count)
    assert sel.trimmed_always
    assert sel.tokens <= 30
    assert sel.pieces and sel.pieces[0].startswith("[about.md — About Acme]")
    full = f"[about.md — About Acme]\n{help_pack.always_documents()[0].text}"
    assert full.startswith(sel.pieces[0])
    assert sel.pieces[0] != full


def test_a_smaller_less_relevant_chunk_still_fits(tmp_path: Path) -> None:
    big = "# Big\n\n" + "vpn vpn vpn access " + " ".join(f"filler{i}" for i in range(150))
    small = "# Small\n\nvpn help is in the portal."
    root = write_pack(tmp_path, "p", {"big.md": big, "small.md": small})
    pack = load_pack(root)
    ranked = rank_chunks(pack, "vpn access", None)
    assert [c.doc for c, _ in ranked] == ["big.md", "small.md"]
    sel = select_context([pack], "vpn access", 40, words)
    assert sel.sources == ("small.md",)
    assert sel.tokens <= 40


def test_round_robin_across_two_packs(tmp_path: Path, real_count) -> None:
    def docs(prefix: str) -> dict[str, str]:
        return {
            f"{prefix}-{i}.md": f"# {prefix} {i}\n\nVPN access notes number {i} for {prefix}. "
            + ("vpn " * (3 - i))
            for i in range(3)
        }

    a = load_pack(write_pack(tmp_path, "pack-a", docs("a")))
    b = load_pack(write_pack(tmp_path, "pack-b", docs("b")))
    sel = select_context([a, b], "vpn access", 5000, real_count)
    order = [p.split(" — ", 1)[0].lstrip("[")[0] for p in sel.pieces]
    assert order == ["a", "b", "a", "b", "a", "b"]
    # Within each pack, the best chunk first.
    assert [p.split(" — ")[0] for p in sel.pieces][:2] == ["[a-0.md", "[b-0.md"]


def test_empty_query_selects_only_always_included(help_pack, real_count) -> None:
    sel = select_context([help_pack], "   ", 5000, real_count)
    assert sel.sources == ("about.md",)
    assert rank_chunks(help_pack, "", None) == []


def test_zero_budget_selects_nothing(help_pack, real_count) -> None:
    sel = select_context([help_pack], "vpn", 0, real_count)
    assert sel.text == "" and sel.tokens == 0 and sel.sources == ()
