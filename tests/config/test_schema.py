"""The keyword schema: declared once, consistent with the model, the catalogue and the generated docs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from keepalived_py.config import catalogue, model
from keepalived_py.config.keywords import SCHEMA
from keepalived_py.config.reference import render
from keepalived_py.config.schema import ROOT, Kind

#: section -> model class whose attributes the section's keywords fill
SECTION_MODELS = {
    "global_defs": model.GlobalDefs,
    "vrrp_script": model.VrrpScript,
    "track_file": model.TrackFile,
    "vrrp_instance": model.VrrpInstance,
    "vrrp_sync_group": model.VrrpSyncGroup,
    "virtual_server": model.VirtualServer,
    "real_server": model.RealServer,
    "TCP_CHECK": model.TcpCheck,
    "HTTP_GET": model.HttpCheck,
    "url": model.HttpUrl,
    "MISC_CHECK": model.MiscCheck,
    ROOT: model.Config,
}
#: attributes a builder fills by hand (values spread over several attributes)
BUILT_BY_HAND = {("vrrp_script", "weight"), ("track_file", "weight"), ("vrrp_instance", "authentication")}


def test_every_keyword_has_one_line_of_documentation():
    for kw in SCHEMA.all_keywords():
        assert kw.doc.strip(), f"{kw.section}.{kw.name} has no doc"
        assert "\n" not in kw.doc


@pytest.mark.parametrize("section", sorted(SECTION_MODELS))
def test_supported_keywords_land_in_model_attributes_with_the_same_default(section):
    cls = SECTION_MODELS[section]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for kw in SCHEMA[section].keywords:
        if not kw.supported or kw.attr.startswith("_"):
            continue
        assert kw.attr in fields, f"{section}.{kw.name} -> {cls.__name__}.{kw.attr} missing"
        f = fields[kw.attr]
        if kw.kind is Kind.VALUE and kw.default is not None and (section, kw.name) not in BUILT_BY_HAND:
            assert f.default == kw.default, (
                f"{section}.{kw.name}: schema default {kw.default!r} != {f.default!r}"
            )


def test_every_keyword_keepalived_knows_is_recognised():
    for section_name, keywords in catalogue.KEEPALIVED_KEYWORDS.items():
        section = SCHEMA.sections.get(section_name)
        if section is None:
            # a block kpd does not implement: recognised where it opens, unless its parent is itself skipped
            parents = [p for p, kws in catalogue.KEEPALIVED_KEYWORDS.items() if section_name in kws.values()]
            assert parents, section_name
            for parent in parents:
                if parent in SCHEMA.sections:
                    openers = [
                        k
                        for k, child in catalogue.KEEPALIVED_KEYWORDS[parent].items()
                        if child == section_name
                    ]
                    assert all(SCHEMA[parent].lookup(k) is not None for k in openers), section_name
            continue
        for name in keywords:
            assert section.lookup(name) is not None, f"{section_name}.{name} not recognised"


def test_aliases_resolve_to_the_implemented_keyword():
    vs = SCHEMA["virtual_server"]
    assert vs.lookup("lvs_sched") is vs.lookup("lb_algo")
    assert vs.lookup("lvs_method") is vs.lookup("lb_kind")
    # keepalived 2.2.7 takes the old spelling nb_get_retry in HTTP_GET/SSL_GET only (deprecated there)
    assert SCHEMA["HTTP_GET"].lookup("nb_get_retry") is SCHEMA["HTTP_GET"].lookup("retry")
    for section in ("TCP_CHECK", "MISC_CHECK", "real_server", "virtual_server"):
        assert SCHEMA[section].lookup("nb_get_retry") is None, section
    assert SCHEMA[ROOT].lookup("vrrp_track_file") is SCHEMA[ROOT].lookup("track_file")


def test_generated_keyword_reference_is_up_to_date():
    committed = Path(__file__).resolve().parents[2] / "docs" / "keywords.md"
    assert committed.read_text() == render(), "run `make docs` and commit docs/keywords.md"
