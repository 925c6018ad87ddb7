"""Prompts: rules on real images, vocabularies, encode/decode."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import dicom_testfile
from medq.assess.prompts import (
    FIELDS,
    PROMPT_DIM,
    VOCABULARIES,
    Prompts,
    ct_type_from_kernel,
    ct_type_from_window,
    decode,
    encode,
    encode_many,
    mr_type_from_physics,
    mr_type_from_words,
    prompts_from_image,
)
from medq.image import MedImage
from medq.io.dicom import read_file


def test_mr_small_header_is_t2() -> None:
    image = read_file(dicom_testfile("MR_small.dcm"))  # TR 4000 ms, TE 240 ms
    p = prompts_from_image(image)
    assert (p.dimension, p.modality, p.type) == ("2d", "MR", "mr_t2")
    assert p.source == {"dimension": "tags", "modality": "tags", "region": "default",
                        "type": "tags"}
    assert p.region == "unknown"


def test_ct_small_standard_kernel_is_soft_tissue() -> None:
    p = prompts_from_image(read_file(dicom_testfile("CT_small.dcm")))  # kernel STANDARD
    assert (p.modality, p.type, p.source["type"]) == ("CT", "ct_soft_tissue", "tags")


def test_fixtures_without_header(ct_slice: MedImage, mr_slice: MedImage, mni_t1: MedImage,
                                 retina: MedImage) -> None:
    ct, mr = prompts_from_image(ct_slice), prompts_from_image(mr_slice)
    assert (ct.modality, ct.type, ct.source["type"]) == ("CT", "ct_other", "default")
    assert (mr.modality, mr.type, mr.source["type"]) == ("MR", "mr_other", "default")
    vol = prompts_from_image(mni_t1)
    assert (vol.dimension, vol.region, vol.source["region"]) == ("3d", "brain", "tags")
    fundus = prompts_from_image(retina)
    assert (fundus.dimension, fundus.modality, fundus.region, fundus.type) == (
        "2d", "OP", "retina", "fundus")


def test_mr_rules_from_physics_and_description(mr_slice: MedImage) -> None:
    assert mr_type_from_physics(500, 15) == "mr_t1"
    assert mr_type_from_physics(4000, 100) == "mr_t2"
    assert mr_type_from_physics(3000, 20) == "mr_pd"
    assert mr_type_from_physics(9000, 120, 2500) == "mr_flair"
    assert mr_type_from_physics(2300, 3, 900) == "mr_t1"  # MPRAGE
    assert mr_type_from_physics(1200, 50) == "mr_other"
    assert mr_type_from_physics(None, 20) is None
    assert mr_type_from_words(["AX", "T2", "FLAIR"]) == "mr_flair"
    flair = mr_slice.evolve(physics={"tr_ms": 9000.0, "te_ms": 120.0, "ti_ms": 2500.0})
    assert prompts_from_image(flair).type == "mr_flair"
    # the description wins over TR/TE
    described = mr_slice.evolve(physics={"tr_ms": 4000.0, "te_ms": 240.0},
                                meta={"series_description": "t1_mprage_sag_p2"})
    assert prompts_from_image(described).type == "mr_t1"


def test_ct_rules(ct_slice: MedImage) -> None:
    assert ct_type_from_window(-600, 1500) == "ct_lung"
    assert ct_type_from_window(400, 1800) == "ct_bone"
    assert ct_type_from_window(40, 400) == "ct_soft_tissue"
    assert ct_type_from_window(None, 400) is None
    assert ct_type_from_kernel("B70f", "chest") == "ct_lung"
    assert ct_type_from_kernel("B70f", "pelvis") == "ct_bone"
    assert ct_type_from_kernel("Br40d") == "ct_soft_tissue"
    assert ct_type_from_kernel("LUNG") == "ct_lung"
    lung = ct_slice.evolve(meta={"window_center": "-600\\-500", "window_width": 1500})
    assert prompts_from_image(lung).type == "ct_lung"


def test_predict_missing_hook(ct_slice: MedImage) -> None:
    calls = []

    def guess(image: MedImage, missing: tuple[str, ...]) -> dict[str, str]:
        calls.append(missing)
        return {"region": "chest", "type": "no-such-type", "modality": "MR"}

    p = prompts_from_image(ct_slice, predict_missing=guess)
    assert calls == [("region", "type")]
    assert p.modality == "CT"  # stated fields are never overridden
    assert (p.region, p.source["region"]) == ("chest", "predicted")
    assert (p.type, p.source["type"]) == ("other", "predicted")  # outside the vocabulary


def test_unknown_values_go_to_catch_all(ct_slice: MedImage) -> None:
    p = Prompts(dimension="4d", modality="XYZ", region="moon", type="banana")
    assert (p.dimension, p.modality, p.region, p.type) == ("2d", "other", "unknown", "other")
    assert Prompts(modality="cr").modality == "XR" and Prompts(modality="DX").modality == "XR"
    us = prompts_from_image(ct_slice.evolve(modality="US"))
    assert (us.modality, us.type, us.source["modality"]) == ("other", "other", "tags")
    unknown = prompts_from_image(ct_slice.evolve(modality="OT"))
    assert unknown.source == {"dimension": "tags", "modality": "default", "region": "default",
                              "type": "default"}


def test_encode_decode_round_trip() -> None:
    assert sum(len(v) for v in VOCABULARIES.values()) == PROMPT_DIM
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = Prompts(**{f: VOCABULARIES[f][rng.integers(len(VOCABULARIES[f]))] for f in FIELDS})
        vec = encode(p)
        assert vec.shape == (PROMPT_DIM,) and vec.dtype == np.float32
        assert vec.sum() == 4 and set(np.unique(vec)) == {0.0, 1.0}
        back = decode(vec)
        assert back == p and back.source == dict.fromkeys(FIELDS, "predicted")
    batch = encode_many([Prompts(), Prompts(modality="CT")])
    assert batch.shape == (2, PROMPT_DIM) and np.all(batch.sum(1) == 4)
    with pytest.raises(ValueError):
        decode(np.zeros(PROMPT_DIM + 1))


def test_unknown_encodes_into_catch_all_slot() -> None:
    vec = encode(Prompts(dimension="?", modality="?", region="?", type="?"))
    assert decode(vec) == Prompts(dimension="2d", modality="other", region="unknown", type="other")
    assert vec.sum() == 4
    assert Prompts().to_dict()["source"] == dict.fromkeys(FIELDS, "default")


def test_ct_window_tags_reach_the_type_prompt(tmp_path) -> None:
    """A lung-window CT file is typed ct_lung from its own WindowCenter/WindowWidth tags."""
    import pydicom

    from conftest import dicom_testfile
    from medq.io import load

    ds = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
    ds.WindowCenter, ds.WindowWidth = ["-600", "40"], ["1500", "400"]
    ds.ProtocolName = "CHEST ROUTINE"
    ds.save_as(tmp_path / "lung.dcm")
    image = load(tmp_path / "lung.dcm")
    assert (image.meta["window_center"], image.meta["window_width"]) == (-600.0, 1500.0)
    assert image.meta["protocol_name"] == "CHEST ROUTINE"
    assert prompts_from_image(image).type == "ct_lung"


def test_a_modality_the_user_names_is_the_prompts_source_user() -> None:
    """`--modality` (`load(..., modality=)`, `modality=` in Python) reads a file as that
    modality over what its header says; the prompts then say the value is the user's, not the
    tags' (it said `tags` for a modality the header contradicts)."""
    import medq
    from medq.io import load

    path = dicom_testfile("CT_small.dcm")
    assert prompts_from_image(load(path)).source["modality"] == "tags"
    named = load(path, modality="PT", region="Chest".lower())
    said = prompts_from_image(named)
    assert (said.modality, said.source["modality"], said.source["region"]) == ("PT", "user", "user")
    array = medq.io.from_array(np.random.default_rng(0).random((64, 64)) * 100)
    api = medq.assess(array, modality="MR")
    assert api.prompts["source"]["modality"] == "user"


def test_colour_files_and_arrays_that_state_no_photograph_say_their_prompts_come_from_values(
        tmp_path) -> None:
    # a colour DICOM stating OT (pydicom's SC_rgb_jpeg) or no modality, and a colour array, are
    # read as fundus photographs by their colour: their prompts said "tags"; a colour DICOM
    # stating CT is not a CT to grade (a screen capture), unless the user says what it is
    import pydicom
    from skimage.data import astronaut

    from medq.assess.loading import check_assessable
    from medq.errors import UnsupportedImage
    from medq.io import from_array, load

    stated_ot = load(dicom_testfile("SC_rgb_jpeg.dcm"))
    assert stated_ot.is_rgb and stated_ot.meta["dicom_modality"] == "OT"
    for image in (stated_ot, from_array(astronaut())):
        source = prompts_from_image(image).source
        assert source["modality"] == "values", source
    told = from_array(astronaut(), modality="OP")
    assert prompts_from_image(told).source["modality"] != "values"
    ds = pydicom.dcmread(dicom_testfile("SC_jpeg_no_color_transform.dcm"))
    ds.Modality = "CT"
    ds.save_as(tmp_path / "colour_ct.dcm")
    colour_ct = load(tmp_path / "colour_ct.dcm")
    with pytest.raises(UnsupportedImage, match="colour pixels in a file stating Modality CT"):
        check_assessable(colour_ct)
    check_assessable(colour_ct, told=True)  # --modality OP: read as a photograph
    del ds.Modality  # a colour file stating no modality at all: a photograph by its colour
    ds.save_as(tmp_path / "unstated.dcm")
    unstated = load(tmp_path / "unstated.dcm")
    check_assessable(unstated)
    assert unstated.modality == "OP" and prompts_from_image(unstated).source["modality"] == \
        "values"
    ds.Modality = "OP"
    ds.save_as(tmp_path / "photo.dcm")
    photo = load(tmp_path / "photo.dcm")
    check_assessable(photo)
    assert prompts_from_image(photo).source["modality"] == "tags"


def test_a_modality_the_classifier_is_sure_of_is_read_as_that_modality(tmp_path,
                                                                      monkeypatch) -> None:
    """A bare 8-bit PNG of the bundled skull radiograph, with quantum noise of its own: its file
    states no modality, the prompt classifier is sure it is a radiograph, and medq then reads it
    as one throughout (measures, finding types, wording, the restoration's conditioning), as if
    --modality DX named it, with the prompt's source `predicted`. The restored image keeps the
    file's unstated modality, and an unsure classifier leaves the generic reading."""
    from skimage import io as skio

    import medq
    from medq.assess import prompt_classifier
    from medq.data.samples import load_sample
    from medq.restore.pipeline import restore

    xr = load_sample("xr_head").array.astype(np.float64)
    xr = (xr - xr.min()) / (xr.max() - xr.min())
    noisy = np.random.default_rng(0).poisson(xr * 40.0) / 40.0
    skio.imsave(tmp_path / "xr.png", np.round(np.clip(noisy, 0, 1) * 255).astype(np.uint8),
                check_contrast=False)
    path = tmp_path / "xr.png"
    assert medq.load(path).modality == "OT"
    assessment = medq.assess(path)
    assert assessment.modality == "DX" and assessment.prompts["modality"] == "XR"
    assert assessment.prompts["source"]["modality"] == "predicted"
    report = medq.describe(path)
    assert report.modality == "DX" and "noise" in [f.type for f in report.findings]
    assert "quantum" in report.text  # a radiograph's noise, in a radiograph's words
    result = restore(medq.load(path), reassess=False)
    assert result.changed and "quantum" in result.description
    assert result.image.modality == "OT" and "modality_from" not in result.image.meta
    monkeypatch.setattr(prompt_classifier, "CONFIDENCE", 1.01)  # never sure
    unsure = medq.assess(path)
    assert unsure.modality == "OT" and unsure.prompts["modality"] == "other"
    assert "quantum" not in medq.describe(path).text


def test_every_volume_of_a_4d_file_is_read_as_one_modality(tmp_path) -> None:
    """The volumes of a 4D NIfTI were each read alone: one with a k-space spike was guessed
    another modality than its neighbours (or none) and lost their MR findings. Each volume now
    takes the guess for its file, made on the file's middle volume."""
    import nibabel as nib

    from medq.assess import guess
    from medq.data.samples import load_sample
    from medq.io import load

    slab = load_sample("mni_t1").array[80:100, ::2, ::2].T * 10
    rng = np.random.default_rng(0)
    volumes = np.stack([slab + rng.normal(0, 5, slab.shape) for _ in range(5)], -1)
    spiked = np.fft.fftn(volumes[..., 0], axes=(0, 1))
    spiked[3, 5, :] += np.abs(spiked).max() * 2.0
    volumes[..., 0] = np.abs(np.fft.ifftn(spiked, axes=(0, 1)))
    nib.save(nib.Nifti1Image(volumes.astype(np.float32), np.eye(4)), tmp_path / "bold.nii.gz")
    volumes = [load(f"{tmp_path / 'bold.nii.gz'}@volume={v}") for v in range(5)]
    read = [guess.with_guessed_modality(v, guess.guessed_modality(v)) for v in volumes]
    assert [image.modality for image in read] == ["MR"] * 5
    assert all(image.meta["modality_from"] == "prompt classifier" for image in read)


def test_one_guess_serves_the_prompt_and_the_reading_and_a_guessed_ct_is_prompt_only(
        tmp_path, monkeypatch) -> None:
    """A guessed CT holds no Hounsfield units (they make a file CT by its values), so a CT
    window would read it as severe low contrast: it fills the prompt only. A 4D file whose
    middle volume the classifier is unsure of leaves every volume unnamed, its prompts too
    (they said MR, each volume guessed alone, while the volumes were graded as OT)."""
    import nibabel as nib

    from medq.assess import guess
    from medq.assess import prompt_classifier as pc
    from medq.assess.loading import load_measured
    from medq.data.samples import load_sample

    grey = MedImage(load_sample("mr_small").array, (1.0, 1.0), "OT")
    assert guess.with_guessed_modality(grey, "CT") is grey
    assert guess.with_guessed_modality(grey, "MR").modality == "MR"
    assert guess.with_guessed_modality(grey.evolve(modality="CT"), "MR").modality == "CT"
    fill = pc.filled_with("CT")
    assert prompts_from_image(grey, fill).modality == "CT"  # the prompt, predicted
    assert fill(grey, ("region",)) == {} and pc.filled_with(None)(grey, ("modality",)) == {}
    slab = load_sample("mni_t1").array[80:90, ::2, ::2].T * 10
    nib.save(nib.Nifti1Image(np.stack([slab] * 3, -1).astype(np.float32), np.eye(4)),
             tmp_path / "bold.nii.gz")
    monkeypatch.setattr(guess, "_volume_guess", lambda *args: None)  # unsure of the middle volume
    loaded = load_measured(f"{tmp_path / 'bold.nii.gz'}@volume=0", None, measures=False)
    assert loaded.prompts.modality == "other" and loaded.image.modality == "OT"
