"""`--models` parsing, overrides and their errors."""

from __future__ import annotations

import pytest

from t2igan.errors import ConfigError
from t2igan.models import apply_overrides, parse_model_list, parse_model_ref


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
