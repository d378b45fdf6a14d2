"""Model loading, long texts in pieces, and the data files."""

from __future__ import annotations

from importlib import resources

import pytest

from pipeline.errors import ConfigError
from pipeline.nlp import lexicon
from pipeline.nlp.extract import extract_pieces, prepare_text
from pipeline.nlp.model import EXCLUDED_COMPONENTS, load_model, pipe_texts, split_long_text


def test_every_data_file_loads():
    files = [f for f in resources.files("pipeline.data").iterdir() if f.name.endswith(".json")]
    assert {f.name for f in files} >= set(lexicon.DATA_FILES)
    for f in files:
        assert lexicon.load_data(f.name)
    assert lexicon.agencies().lookup("ITAR-TASS").name == "TASS"
    assert lexicon.agencies().lookup("New China News Agency").name == "Xinhua"
    assert lexicon.countries().lookup("the Kremlin") == ("RUS", "capital")
    assert lexicon.cameo().phrases[("pledged",)].code.startswith("03")


def test_canonical_agency_names_as_in_gold_readme():
    names = {a.name for a in lexicon.agencies().by_alias.values()}
    assert {"TASS", "RIA Novosti", "Interfax", "Sputnik", "RT", "Reuters", "AP", "AFP", "Xinhua", "Anadolu",
            "Ukrinform", "UNIAN", "Kyodo", "Yonhap", "KCNA", "IRNA", "Bloomberg", "dpa", "EFE", "ANSA", "PTI",
            "BelTA", "AAP", "PA", "Canadian Press"} <= names


def test_pruned_components(nlp):
    assert not set(EXCLUDED_COMPONENTS) & set(nlp.pipe_names)
    assert {"ner", "tagger", "sentencizer"} <= set(nlp.pipe_names)


def test_unknown_model_names_the_setting():
    with pytest.raises(ConfigError, match="--spacy-model"):
        load_model("no_such_model_xyz")


def test_split_long_text_keeps_everything():
    text = "\n".join(f"Paragraph {i} " + "word " * 30 for i in range(20))
    pieces = split_long_text(text, 500)
    assert "".join(p for _, p in pieces) == text
    assert all(len(p) <= 500 for _, p in pieces)
    assert all(text[o:o + len(p)] == p for o, p in pieces)


def test_long_text_in_pieces(nlp):
    para = "Poland condemned the attack on Monday, the state-run PAP news agency reported.\n"
    text = "Filler sentence number one is here.\n" * 40 + para
    old = nlp.max_length
    nlp.max_length = 600
    try:
        (pieces, ctx), = list(pipe_texts(nlp, [(text, "ctx")]))
    finally:
        nlp.max_length = old
    assert ctx == "ctx" and len(pieces) > 1
    attrs, events, _ = extract_pieces(pieces, published_at="2024-03-14")
    pap = [a for a in attrs if a["source"] == "PAP"]
    assert pap and text[pap[0]["start"]:pap[0]["end"]] == "PAP"
    assert any(e["actor1"]["country"] == "POL" for e in events)
    assert all(text[e["start"]:e["end"]] == e["trigger"] for e in events)


def test_prepare_text_unwraps_without_moving_offsets():
    wrapped = ("The Soviet Union conducted an underground nuclear test aimed at\nperfecting military "
               "technology, the official news agency Tass\nreported on Friday in a short statement from "
               "Moscow today.\n    Tass said the test was carried out at the usual testing ground.\n")
    out = prepare_text(wrapped)
    assert len(out) == len(wrapped)
    assert "aimed at perfecting" in out and "\n    Tass said" in out
    plain = "Short line.\nAnother.\n"
    assert prepare_text(plain) == plain


def test_shared_model_is_loaded_once_per_process():
    from pipeline.nlp.model import shared_model

    assert shared_model(None) is shared_model(None)


def test_warm_model_loads_once_in_the_background_through_the_shared_loader(monkeypatch):
    import threading

    from pipeline.nlp import model

    calls, gate = [], threading.Event()

    def load(name=None):
        gate.wait(5)
        calls.append(name)
        return object()

    monkeypatch.setattr(model, "_SHARED", {})
    monkeypatch.setattr(model, "load_model", load)
    thread = model.warm_shared_model("m")
    assert thread is not None
    assert model.warm_shared_model("m") is None  # already loading
    gate.set()
    first = model.shared_model("m")  # waits for the background load, does not load again
    thread.join(5)
    assert model.shared_model("m") is first and calls == ["m"]
    assert model.warm_shared_model("m") is None  # already loaded


def test_a_failed_background_load_is_raised_by_the_next_load(monkeypatch):
    import pytest

    from pipeline.errors import ConfigError
    from pipeline.nlp import model

    def load(name=None):
        raise ConfigError("no such model")

    monkeypatch.setattr(model, "_SHARED", {})
    monkeypatch.setattr(model, "load_model", load)
    model.warm_shared_model("missing").join(5)
    with pytest.raises(ConfigError):
        model.shared_model("missing")
