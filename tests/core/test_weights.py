"""Official weights are recognised by the file's content: a stand-in under the official file name is a
stand-in, and a file with no published sha256 is said to be unverified, never taken as official."""

from __future__ import annotations

import hashlib

import pytest

from t2igan.metrics.inception import WEIGHTS_REFS, build_extractor
from t2igan.text.damsm import damsm_weights_ref
from t2igan.weights import OFFICIAL_SHA256, WeightsRef, check_official
from tests.standins import write_fidelity_inception


@pytest.mark.parametrize("filename", sorted(OFFICIAL_SHA256))
def test_a_file_is_official_only_by_its_full_sha256(filename):
    ref = WeightsRef("any", filename.split("/")[0], "tag", filename)
    official = OFFICIAL_SHA256[filename]
    assert check_official(ref, official).official is True
    assert check_official(ref, official).stand_in is False
    # the same first eight digits (all a torch.hub file name carries) are not enough where the full is known
    near = official[:8] + ("0" if official[8] != "0" else "1") + official[9:]
    check = check_official(ref, near)
    assert check.official is False and check.stand_in
    assert near[:12] in check.note and official[:12] in check.note


def test_a_hash_prefix_in_the_file_name_is_checked_against_the_content():
    ref = WEIGHTS_REFS["paper"]  # torchvision's inception_v3_google-0cc3c7bd.pth: no full sha256 published
    assert ref.filename not in OFFICIAL_SHA256
    assert check_official(ref, "0cc3c7bd" + "f" * 56).official is True
    check = check_official(ref, "ab" * 32)
    assert check.official is False and "does not start with 0cc3c7bd" in check.note


def test_a_file_with_no_published_hash_is_unverified_and_marked():
    check = check_official(damsm_weights_ref("cub", "text"), "12" * 32)
    assert check.official is None and check.stand_in
    assert "not verified" in check.note and "text_encoder200.pth" in check.note


def test_an_extractor_file_named_as_the_official_one_is_still_a_stand_in(fidelity_weights_file):
    extractor = build_extractor("standard", fidelity_weights_file, feature="64")
    assert fidelity_weights_file.name == "weights-inception-2015-12-05-6726825d.pth"
    assert extractor.info.stand_in is True
    assert "not the official torch-fidelity weights" in extractor.info.weights_note
    sha = hashlib.sha256(fidelity_weights_file.read_bytes()).hexdigest()
    assert extractor.info.sha256 == sha and sha[:12] in extractor.info.weights_note


@pytest.fixture
def fidelity_weights_file(tmp_path):
    """torch-fidelity's key layout with random values, under the official file name."""
    return write_fidelity_inception(tmp_path)
