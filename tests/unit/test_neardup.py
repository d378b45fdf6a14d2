"""Pure near-duplicate core: signatures, similarity, verification, LSH index (horizon, budget)."""

from __future__ import annotations

import itertools

import pytest

from pipeline.corpus import read_jsonl
from pipeline.neardup import (DAY_MS, Fingerprint, NearDupConfig, NearDuplicateIndex, band_keys, estimate_jaccard,
                              fingerprint, similarity, verify)
from pipeline.text import cut_spans

T0 = 1_760_000_000_000
STORY = ("The city council of Arnholt voted 23 to 8 on Tuesday to build a light rail line between the central "
         "station and the airport, a project estimated at 410 million euros that is due to open in 2031.\n"
         "Mayor Petra Lindqvist said the line would carry 45,000 passengers a day and cut road traffic on the "
         "ring road, while opposition councillors said the cost estimate was too optimistic.\n"
         "Construction is expected to start next spring after a final environmental review by the regional "
         "authority, which must also approve the route through the old harbour district.")
FORMULA = "Qtly div 20 cts vs 20 cts previously\n    Pay April 15\n    Record March 23\n Reuter"


def fp(aid, body, title="", t=T0, cfg=NearDupConfig()):
    return fingerprint(aid, body, title, t, cfg)


def test_signature_is_compact_and_deterministic():
    a, b = fp("a", STORY), fp("b", STORY)
    assert a.signature == b.signature and len(a.signature) == 4 * NearDupConfig().num_perm
    assert len(a.to_bytes()) <= 1024
    assert Fingerprint.from_bytes(a.to_bytes()) == a
    assert len(band_keys(a.signature)) == NearDupConfig().bands
    assert fp("e", "  \n ") is None


def test_edited_copy_is_similar_and_other_story_is_not():
    paras = STORY.split("\n")
    trimmed = "\n".join(paras[:2]) + "\nSupport our newsroom: donate today and keep local news free."
    assert verify(fp("a", STORY), fp("b", trimmed, t=T0 + 3600_000)) >= 0.6
    other = ("Heavy snow closed the mountain pass at Kelvik for a second day on Wednesday, stranding about 200 "
             "lorries, the road authority said, adding that it hoped to reopen one lane by Thursday evening.")
    assert similarity(fp("a", STORY), fp("c", other)) < 0.1
    assert verify(fp("a", STORY), fp("c", other)) is None


def test_new_numbers_make_a_new_story():
    changed = STORY.replace("23 to 8", "19 to 12").replace("410", "525").replace("45,000", "38,000").replace(
        "2031", "2033")
    assert verify(fp("a", STORY), fp("b", changed)) is None


def test_formulaic_body_needs_matching_headlines():
    a = fp("a", FORMULA, "QUAKER OATS CO <OAT> REGULAR DIVIDEND")
    same_company = fp("b", FORMULA, "QUAKER OATS <OAT> SETS QUARTERLY DIVIDEND", T0 + 3600_000)
    other_company = fp("c", FORMULA, "UNIBANCORP INC <UBCP> REGULAR DIVIDEND SET", T0 + 3600_000)
    assert verify(a, same_company) == 1.0
    assert verify(a, other_company) is None
    t1 = fp("d", FORMULA, "MIDWEST GRAIN FUTURES 11:00 EDT")
    t2 = fp("e", FORMULA, "MIDWEST GRAIN FUTURES 11:01 EDT")
    assert verify(t1, t2) is None


def test_horizon_is_respected():
    cfg = NearDupConfig()
    a = fp("a", STORY)
    assert verify(a, fp("b", STORY, t=T0 + 7 * DAY_MS)) == 1.0
    assert verify(a, fp("b", STORY, t=T0 + 21 * DAY_MS)) is None
    index = NearDuplicateIndex(cfg)
    assert index.process(a).duplicate_of is None
    assert index.process(fp("b", STORY, t=T0 + DAY_MS)).duplicate_of == "a"
    later = index.process(fp("c", STORY, t=T0 + 30 * DAY_MS))  # a and b evicted: a new occasion
    assert later.duplicate_of is None and later.story_id == "c"
    assert len(index) == 1


def test_index_tie_break_and_story_id():
    index = NearDuplicateIndex()
    paras = STORY.split("\n")
    v1 = index.process(fp("z-first", STORY, t=T0))
    v2 = index.process(fp("b-second", "\n".join(paras[:2]), t=T0 + 10))
    v3 = index.process(fp("a-third", "\n".join(paras[:2]) + "\nRead more on our site.", t=T0 + 10))
    assert v1.story_id == "z-first" and v1.duplicate_of is None
    assert v2.story_id == "z-first" and v3.story_id == "z-first"
    # same event time: the smaller id is the earlier story, so a-third precedes b-second
    idx2 = NearDuplicateIndex()
    assert idx2.query(fp("b", STORY, t=T0)).duplicate_of is None
    idx2.add(fp("b", STORY, t=T0))
    assert idx2.query(fp("a", STORY, t=T0)).duplicate_of is None  # a < b: b cannot be a's original


def test_band_budget_is_respected():
    cfg = NearDupConfig(band_budget=5)
    index = NearDuplicateIndex(cfg)
    for i in range(40):
        index.add(fp(f"f{i:02d}", FORMULA, f"COMPANY{i} DIVIDEND", T0 + i))
    assert max(index.bucket_sizes()) == 5


@pytest.mark.parametrize("bad", [{"threshold": 0.0}, {"bands": 40, "rows": 2}, {"band_budget": 0},
                                 {"horizon_ms": -1}])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        NearDupConfig(**bad)


def _syn(synthetic_dev):
    out = {}
    for d in synthetic_dev:
        body = cut_spans(d["body"], [(b["start"], b["end"]) for b in d["labels"]["boilerplate"]])
        out[d["id"]] = (d, body)
    return out


def _ms(iso):
    from datetime import datetime

    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def test_synthetic_copies_match_and_traps_stay_apart_even_without_horizon(synthetic_dev):
    cfg = NearDupConfig(horizon_ms=10 ** 13)  # traps must fail on content, not only on time
    syn = _syn(synthetic_dev)
    fps = {i: fingerprint(i, body, d["title"], _ms(d["published_at"]), cfg) for i, (d, body) in syn.items()}
    groups, traps = {}, {}
    for i, (d, _) in syn.items():
        if d["labels"].get("duplicate_group") is not None:
            groups.setdefault(d["labels"]["duplicate_group"], []).append(i)
        if d["labels"].get("trap_pair") is not None:
            traps.setdefault(d["labels"]["trap_pair"], []).append(i)
    assert groups and traps
    for ids in groups.values():
        for a, b in itertools.combinations(ids, 2):
            assert verify(fps[a], fps[b], cfg) is not None, (a, b)
    for a, b in traps.values():
        assert verify(fps[a], fps[b], cfg) is None, (a, b)


def test_real_wire_copies_are_similar(shared):
    wanted = {"the-pantagraph-3", "winnipeg-free-press-2", "abc-news-1", "associated-press-2"}
    arts = {d["id"]: d for d in read_jsonl(shared / "corpus" / "wire_articles.jsonl") if d["id"] in wanted}
    f = {i: fingerprint(i, d["body"], d["title"], T0) for i, d in arts.items()}
    assert estimate_jaccard(f["the-pantagraph-3"].signature, f["winnipeg-free-press-2"].signature) > 0.6
    # an AP story inside a longer page: low Jaccard, high containment
    assert estimate_jaccard(f["abc-news-1"].signature, f["associated-press-2"].signature) < 0.5
    assert verify(f["abc-news-1"], f["associated-press-2"]) >= 0.7


def test_reuters_same_body_different_company_stays_apart(shared):
    ids = {"reuters-3774", "reuters-5085", "reuters-13893", "reuters-13977", "reuters-7682", "reuters-7835"}
    arts = {d["id"]: d for d in read_jsonl(shared / "corpus" / "reuters21578.jsonl") if d["id"] in ids}
    f = {i: fingerprint(i, d["body"], d["title"], T0) for i, d in arts.items()}
    assert verify(f["reuters-3774"], f["reuters-5085"]) is None  # dividend notices, two companies
    assert verify(f["reuters-13893"], f["reuters-13977"]) is None  # hog prices, two markets
    assert verify(f["reuters-7682"], f["reuters-7835"]) == 1.0  # one company's notice, retitled


def test_fast_word_and_number_paths_equal_the_unicode_regex():
    import re
    import zlib

    from pipeline.neardup import _body_numbers, _word_hashes
    from pipeline.text import normalize

    for raw in (STORY, FORMULA, "U.S. 3-for-2 split; ratio 1.5/2 at 11:00, 45,000 shares_held __x__ a_b",
                "café 12,5 % – naïve Zoë's 2031", "", "!!!", "word"):
        text = normalize(raw)
        words = re.findall(r"\w+", text)
        assert _word_hashes(text).tolist() == [zlib.crc32(w.encode()) for w in words]
        nums = list(dict.fromkeys(re.findall(r"\d+(?:[.,/:]\d+)*", text)))[:32]
        assert _body_numbers(text) == tuple(zlib.crc32(n.encode()) & 0xFFFF for n in nums)


def test_story_is_the_earliest_direct_match_and_duplicate_of_the_most_similar():
    from pipeline.neardup import Match, combine, match

    v = combine("c", [Match("b", T0 + 10, 0.9), None, Match("a", T0, 0.7)])
    assert (v.duplicate_of, v.similarity, v.story_id) == ("b", 0.9, "a")
    assert combine("c", []) == (None, None, "c")
    a, b = fp("a", STORY, t=T0), fp("b", STORY, t=T0 + 1)
    assert match(a, b).article_id == "a" and match(b, a) is None  # only an earlier story is a match
    assert match(a, fp("a", STORY, t=T0 + 1)) is None  # an update of the same article is not a copy


def test_band_hashes_follow_band_keys():
    from pipeline.neardup import band_hashes

    a, b = fp("a", STORY), fp("b", "\n".join(STORY.split("\n")[:2]))
    ka, kb = band_keys(a.signature), band_keys(b.signature)
    ha, hb = band_hashes(a.signature).tolist(), band_hashes(b.signature).tolist()
    assert len(set(ha)) == len(ha) == 32
    assert [x == y for x, y in zip(ka, kb)] == [x == y for x, y in zip(ha, hb)]
    assert any(x == y for x, y in zip(ha, hb)) and not all(x == y for x, y in zip(ha, hb))
