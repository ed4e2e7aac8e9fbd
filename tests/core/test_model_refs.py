"""`--models` parsing, overrides and their errors."""

from __future__ import annotations

import pytest

from t2igan.errors import ConfigError
from t2igan.models import apply_overrides, parse_model_list, parse_model_ref, resolve
from t2igan.registry import get_registry


def test_plain_names_and_variants():
    refs = parse_model_list("dfgan,dfgan:fusion=rat")
    assert [r.name for r in refs] == ["dfgan", "dfgan"]
    assert refs[0].overrides == ()
    assert refs[1].overrides_dict() == {"fusion": "rat"}
    assert refs[1].variant == "dfgan:fusion=rat"


def test_several_overrides_of_one_model_continue_after_commas():
    refs = parse_model_list("alrgan:alr=false,lvr=false,dfgan")
    assert len(refs) == 2
    assert refs[0].overrides_dict() == {"alr": False, "lvr": False}
    assert refs[1].name == "dfgan"


def test_preset_and_typed_values():
    ref = parse_model_ref("ratlip.cub256:rnn_hidden=128,shuffle_attention=off,lr_g=0.0002")
    assert ref.preset == "cub256"
    assert ref.overrides_dict() == {"lr_g": 0.0002, "rnn_hidden": 128, "shuffle_attention": False}
    # canonical label: overrides sorted, booleans lower-case
    assert ref.label == "ratlip.cub256:lr_g=0.0002,rnn_hidden=128,shuffle_attention=false"


def test_malformed_override_names_the_flag_and_the_piece():
    with pytest.raises(ConfigError, match="override 'fusion' must look like key=value"):
        parse_model_ref("dfgan:fusion")


def test_unknown_override_key_suggests_and_lists_allowed():
    with pytest.raises(ConfigError) as caught:
        apply_overrides({"fusion": "dfblock", "nf": 32}, {"fusoin": "rat"}, where="dfgan:fusoin=rat")
    assert "Did you mean 'fusion'?" in str(caught.value)
    assert "Allowed keys: fusion, nf" in str(caught.value)


def test_empty_list_is_an_error():
    with pytest.raises(ConfigError, match="--models is empty"):
        parse_model_list(" , ")


def test_a_string_valued_key_keeps_the_word_written_not_its_parsed_value():
    # `none` parses as None and `1` as 1; for a key whose preset value is a string they stay words
    ref = parse_model_ref("ratlip:rat_mode=none,tag=1,flag=none")
    config = apply_overrides(
        {"rat_mode": "batch_sequence", "tag": "a", "flag": None}, ref.overrides_dict(), "x"
    )
    assert config == {"rat_mode": "none", "tag": "1", "flag": None}


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("dfgan:nf=abc", "dfgan:nf=abc: override nf=abc: expected an integer (the preset's nf is 16)"),
        ("dfgan:nf=3.5", "override nf=3.5: expected an integer"),
        ("dfgan:nf=true", "override nf=true: expected an integer"),
        (
            "dfgan:magp_weight=yes",
            "override magp_weight=true: expected a number (the preset's magp_weight is 2.0)",
        ),
        ("ratlip:shuffle_attention=2", "override shuffle_attention=2: expected true or false"),
        (
            "dfgan:truncation=none",
            "override truncation=none: expected a number (the preset's truncation is 0.88)",
        ),
        (
            "galip.cub:clip_layers=3",
            "override clip_layers=3: clip_layers is a tuple and cannot be set in a model",
        ),
        ("dfgan:lr_d=fast", "override lr_d=fast: expected a number"),
    ],
)
def test_an_override_of_the_wrong_type_is_refused_naming_the_key_and_the_preset_value(ref, message):
    """Before anything is built: `dfgan:nf=abc` would otherwise reach nn.Linear as a TypeError."""
    with pytest.raises(ConfigError) as caught:
        resolve(parse_model_ref(ref), get_registry())
    assert message in str(caught.value)


def test_an_override_keeps_the_preset_type_where_it_can_and_none_where_a_preset_has_none():
    registry = get_registry()
    assert resolve(parse_model_ref("alrgan:alr_weight=0"), registry).config["alr_weight"] == 0.0
    assert isinstance(resolve(parse_model_ref("alrgan:alr_weight=0"), registry).config["alr_weight"], float)
    # None where some preset of the model has None (galip's tiny sizes cond_dim from its encoder)
    assert resolve(parse_model_ref("galip.cub:cond_dim=none"), registry).config["cond_dim"] is None
    assert resolve(parse_model_ref("ratgan:truncation=0.5"), registry).config["truncation"] == 0.5
    assert (
        resolve(parse_model_ref("ratlip:rat_mode=none"), registry).config["rat_mode"] == "none"
    )  # text stays text
