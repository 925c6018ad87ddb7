"""BIDS / dcm2niix sidecars and file names: a converted scan's header is read, not guessed."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medq.assess.prompts import prompts_from_image
from medq.image import MedImage
from medq.io import load, save
from medq.io.bids import bids_suffix

DCM2NIIX = {  # what dcm2niix writes beside a converted T1-weighted MPRAGE (times in seconds)
    "Modality": "MR", "MagneticFieldStrength": 3, "Manufacturer": "Siemens",
    "ManufacturersModelName": "Prisma_fit", "BodyPartExamined": "BRAIN",
    "SeriesDescription": "t1_mprage_sag", "ProtocolName": "t1_mprage_sag",
    "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND"], "RepetitionTime": 2.3,
    "EchoTime": 0.00226, "InversionTime": 0.9, "FlipAngle": 9,
    "ConversionSoftware": "dcm2niix",
}


def _nifti(path: Path, mr_slice: MedImage, sidecar: dict | None = None) -> Path:
    """A small MR volume written by nibabel (no medq sidecar), with `sidecar` beside it."""
    volume = np.stack([mr_slice.array] * 4).T.astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(volume, np.diag([0.9, 0.9, 3.0, 1.0])), path)
    if sidecar is not None:
        path.with_name(path.name.replace(".nii.gz", ".json")).write_text(json.dumps(sidecar))
    return path


def test_a_dcm2niix_sidecar_states_modality_region_contrast_and_physics(tmp_path: Path,
                                                                         mr_slice: MedImage
                                                                         ) -> None:
    """The sidecar's DICOM header is read as a DICOM file's tags are: MR, brain, T1 from the
    description, TR/TE/TI in ms (BIDS states seconds), field strength; the prompts come from
    the tags, not the prompt classifier."""
    image = load(_nifti(tmp_path / "t1_mprage.nii.gz", mr_slice, DCM2NIIX))
    assert (image.modality, image.region) == ("MR", "brain")
    assert image.physics["tr_ms"] == pytest.approx(2300.0)
    assert image.physics["te_ms"] == pytest.approx(2.26)
    assert image.physics["ti_ms"] == pytest.approx(900.0)
    assert image.physics["field_strength_T"] == 3.0
    assert image.physics["manufacturer_model"] == "Prisma_fit"
    assert image.meta["series_description"] == "t1_mprage_sag"
    prompts = prompts_from_image(image)
    assert (prompts.modality, prompts.region, prompts.type) == ("MR", "brain", "mr_t1")
    assert set(prompts.source.values()) == {"tags"}


def test_mr_contrast_follows_the_timing_when_no_description_names_it(tmp_path: Path,
                                                                      mr_slice: MedImage
                                                                      ) -> None:
    """Without a description the contrast comes from TR/TE in seconds, converted: a long TR and
    TE is T2-weighted (read as milliseconds unconverted, it would not be)."""
    side = {"Modality": "MR", "RepetitionTime": 4.0, "EchoTime": 0.1}
    prompts = prompts_from_image(load(_nifti(tmp_path / "scan.nii.gz", mr_slice, side)))
    assert (prompts.type, prompts.source["type"]) == ("mr_t2", "tags")


def test_a_bids_file_name_states_an_mr_modality_and_contrast(tmp_path: Path,
                                                             mr_slice: MedImage) -> None:
    """With no sidecar, a BIDS name's suffix states the modality (MRI datatypes, `_pet`) and
    the contrast; a name that is not BIDS (no `sub-` label) states nothing."""
    anat = tmp_path / "sub-01" / "ses-1" / "anat"
    flair = load(_nifti(anat / "sub-01_ses-1_acq-fast_FLAIR.nii.gz", mr_slice))
    prompts = prompts_from_image(flair)
    assert (flair.modality, prompts.type, prompts.source["type"]) == ("MR", "mr_flair", "tags")
    pet = load(_nifti(tmp_path / "sub-01" / "pet" / "sub-01_trc-FDG_pet.nii.gz", mr_slice))
    assert pet.modality == "PT"
    assert load(_nifti(tmp_path / "scan_T1w.nii.gz", mr_slice)).modality == "OT"
    assert bids_suffix("sub-A12_run-2_T2starw.nii.gz") == "T2starw"
    assert bids_suffix("T1w.nii.gz") is None


def test_medq_keys_and_the_file_header_take_precedence(tmp_path: Path, mr_slice: MedImage
                                                       ) -> None:
    """medq's own sidecar keys (`Physics`, `BodyPart`) win over the BIDS keys beside them, and a
    malformed BIDS value (text where a number belongs, NaN) is left out, not an error."""
    side = {**DCM2NIIX, "Physics": {"tr_ms": 500.0}, "BodyPart": "head",
            "EchoTime": "short", "FlipAngle": float("nan")}
    image = load(_nifti(tmp_path / "scan.nii.gz", mr_slice, side))
    assert image.physics["tr_ms"] == 500.0 and image.region == "head"
    assert "te_ms" not in image.physics and "flip_angle_deg" not in image.physics


def test_a_saved_copy_keeps_the_acquisition(tmp_path: Path, mr_slice: MedImage) -> None:
    """medq's own save of a converted scan states its physics again, so the copy loads alike."""
    image = load(_nifti(tmp_path / "sub-01_T1w.nii.gz", mr_slice, DCM2NIIX))
    copy = load(save(image, tmp_path / "out" / "copy.nii.gz"))
    assert (copy.modality, copy.region) == ("MR", "brain")
    assert copy.physics["tr_ms"] == pytest.approx(2300.0)


def test_a_bids_dataset_s_sidecars_are_inherited(tmp_path: Path, mr_slice: MedImage) -> None:
    """Inside a BIDS dataset the keys shared by many scans sit higher up (the inheritance
    principle): the root's `T1w.json` gives every T1w its field strength and body part, a
    subject's `sub-01_T1w.json` overrides it for that subject, the file's own sidecar overrides
    both; files for other suffixes or entities do not apply, nor does anything outside a
    dataset (no `dataset_description.json`)."""
    root = tmp_path / "study"
    root.mkdir()
    (root / "dataset_description.json").write_text(json.dumps({"Name": "t", "BIDSVersion": "1.9"}))
    (root / "T1w.json").write_text(json.dumps({"MagneticFieldStrength": 3, "EchoTime": 0.003,
                                               "BodyPartExamined": "BRAIN"}))
    (root / "task-rest_bold.json").write_text(json.dumps({"MagneticFieldStrength": 7}))
    (root / "acq-fast_T1w.json").write_text(json.dumps({"MagneticFieldStrength": 0.55}))
    sub1 = root / "sub-01"
    sub1.mkdir()
    (sub1 / "sub-01_T1w.json").write_text(json.dumps({"MagneticFieldStrength": 1.5}))
    own = {"RepetitionTime": 2.3, "EchoTime": 0.0025}
    one = load(_nifti(sub1 / "ses-1" / "anat" / "sub-01_ses-1_T1w.nii.gz", mr_slice, own))
    assert one.region == "brain"  # the root's, the only body part stated
    assert one.physics["field_strength_T"] == 1.5  # the subject's over the root's
    assert one.physics["te_ms"] == pytest.approx(2.5)  # the file's own over the root's
    assert one.physics["tr_ms"] == pytest.approx(2300.0)
    two = load(_nifti(root / "sub-02" / "anat" / "sub-02_T1w.nii.gz", mr_slice))
    assert (two.region, two.physics["field_strength_T"]) == ("brain", 3.0)  # no own sidecar
    assert two.physics["te_ms"] == pytest.approx(3.0)
    fast = load(_nifti(root / "sub-02" / "anat" / "sub-02_acq-fast_T1w.nii.gz", mr_slice))
    assert fast.physics["field_strength_T"] == 0.55  # the entity's file is more specific
    assert prompts_from_image(two).region == "brain"
    outside = tmp_path / "loose" / "sub-03" / "anat"  # the same layout, no dataset root
    outside.mkdir(parents=True)
    (tmp_path / "loose" / "T1w.json").write_text(json.dumps({"BodyPartExamined": "BRAIN"}))
    alone = load(_nifti(outside / "sub-03_T1w.nii.gz", mr_slice))
    assert (alone.region, alone.physics) == ("unknown", {})


def test_a_ct_sidecar_states_the_exposure_and_dose(tmp_path: Path, mr_slice: MedImage) -> None:
    """dcm2niix writes a CT's Exposure (mAs) as `XRayExposure` and its CTDIvol as is: both are
    the acquisition `medq train --tagged` regresses; an exposure of 0 is not recorded."""
    from medq.assess.acquisition import TARGETS, targets

    side = {"Modality": "CT", "XRayExposure": 200, "XRayTubeCurrent": 250, "CTDIvol": 12.5,
            "KVP": 120}
    image = load(_nifti(tmp_path / "ct.nii.gz", mr_slice, side))
    assert image.modality == "CT"
    assert image.physics["exposure_mAs"] == 200.0 and image.physics["ctdi_vol"] == 12.5
    values, known = targets(image)
    stated = {name: float(v) for name, v, k in zip(TARGETS, values, known, strict=True) if k}
    assert stated == {"ct_exposure": pytest.approx(1.0), "ct_ctdi_vol": pytest.approx(0.3219,
                                                                                      abs=1e-4)}
    zero = load(_nifti(tmp_path / "zero.nii.gz", mr_slice, {**side, "XRayExposure": 0}))
    assert "exposure_mAs" not in zero.physics


BIDS_T1W = {  # a dcm2niix / BIDS sidecar's keys beside medq's (times in seconds)
    **DCM2NIIX, "PhaseEncodingDirection": "j-", "EffectiveEchoSpacing": 0.00049,
    "AcquisitionMatrixPE": 256, "ImageOrientationPatientDICOM": [1, 0, 0, 0, 1, 0],
    "SeriesDescription": "t1_mprage_sag", "BIDSVersion": "1.9.0",
}


@pytest.fixture
def bids_mni_slab(tmp_path: Path) -> Path:
    """Eight axial slices of the bundled MNI T1 (`medq samples --export`) named as a BIDS scan,
    its sidecar stating a slice time per slice and keys medq writes itself (a simulation's
    record, a JPEG's value map) that describe the input, not a result."""
    from medq.data.samples import export_samples

    (sample,) = export_samples(tmp_path / "samples", ["mni_t1"])
    img = nib.load(sample)
    scan = tmp_path / "bids" / "sub-01" / "anat" / "sub-01_T1w.nii.gz"
    scan.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj)[:, :, 90:98], img.affine), scan)
    side = {**BIDS_T1W, "SliceTiming": [0.1 * k for k in range(8)], "Rescale": [2.0, 0.0],
            "degradation": {"name": "mr_noise"}, "source": "clean.nii.gz",
            "PatientName": "DOE^JANE", "PatientID": "12345", "InstitutionName": "General",
            "AcquisitionDateTime": "2026-01-02T10:11:12", "SeriesInstanceUID": "1.2.3.4",
            "RawImage": True, "ConversionSoftwareVersion": "v1"}
    scan.with_name("sub-01_T1w.json").write_text(json.dumps(side))
    return scan


def test_a_saved_copy_carries_the_input_sidecar_s_bids_keys(tmp_path: Path,
                                                             bids_mni_slab: Path) -> None:
    """The sidecar medq writes beside a copy keeps the BIDS keys of the sidecar the image was
    read with (downstream BIDS tools still read the acquisition), medq's own keys over them;
    medq's records of the input (a simulation, a JPEG's value map) and the names of the patient
    and site are not carried. A plane of
    the volume loses the keys of the voxel grid (one slice time per slice of the eight, the
    phase-encoding axis), not the others."""
    image = load(bids_mni_slab)
    copy = json.loads((save(image, tmp_path / "out" / "copy.nii.gz").parent
                       / "copy.json").read_text())
    for key in ("RepetitionTime", "EchoTime", "InversionTime", "Manufacturer", "SliceTiming",
                "PhaseEncodingDirection", "EffectiveEchoSpacing", "BIDSVersion",
                "AcquisitionMatrixPE"):
        assert copy[key] == json.loads(bids_mni_slab.with_name("sub-01_T1w.json").read_text()
                                       )[key], key
    assert copy["File"] == "copy.nii.gz" and copy["Modality"] == "MR"
    assert copy["Physics"]["tr_ms"] == pytest.approx(2300.0)
    assert not {"Rescale", "degradation", "source"} & set(copy)
    assert not {"PatientName", "PatientID", "InstitutionName", "AcquisitionDateTime",
                "SeriesInstanceUID", "RawImage", "ConversionSoftware", "ConversionSoftwareVersion",
                "ImageType"} & set(copy)
    assert "DOE" not in json.dumps(image.meta, default=str)  # nor kept in memory
    bare = image.evolve(meta={})  # written over the copy: nothing of the scan's sidecar stays
    again = json.loads((save(bare, tmp_path / "out" / "copy.nii.gz").parent
                        / "copy.json").read_text())
    assert "RepetitionTime" not in again and again["File"] == "copy.nii.gz"
    reread = load(tmp_path / "out" / "copy.nii.gz")
    assert reread.physics["te_ms"] == pytest.approx(2.26) and reread.region == "brain"
    plane = image.evolve(array=image.array[4], spacing=image.spacing[1:])
    written = save(plane, tmp_path / "out" / "plane.nii.gz")
    kept = json.loads(written.with_name("plane.json").read_text())
    assert not {"SliceTiming", "PhaseEncodingDirection", "EffectiveEchoSpacing",
                "ImageOrientationPatientDICOM"} & set(kept)
    assert kept["RepetitionTime"] == 2.3 and kept["AcquisitionMatrixPE"] == 256


def test_a_restored_bids_scan_keeps_its_sidecar_keys(tmp_path: Path, bids_mni_slab: Path
                                                     ) -> None:
    """`medq restore sub-01_T1w.nii.gz -o out/` writes a sidecar with the input's BIDS keys
    (its slice times too: the result has the input's eight slices) and medq's record."""
    from conftest import run_medq

    res = run_medq("restore", bids_mni_slab, "-o", tmp_path / "out" / "sub-01_T1w.nii.gz",
                   "--method", "tv", "--force")
    assert res.returncode == 0, res.stderr
    side = json.loads((tmp_path / "out" / "sub-01_T1w.json").read_text())
    assert side["SliceTiming"] == pytest.approx([0.1 * k for k in range(8)])
    assert (side["RepetitionTime"], side["PhaseEncodingDirection"]) == (2.3, "j-")
    assert side["Manufacturer"] == "Siemens" and "ConversionSoftware" not in side
    assert side["File"] == "sub-01_T1w.nii.gz" and side["Spacing"] == [1.0, 1.0, 1.0]
    assert "degradation" not in side and "Rescale" not in side


def test_one_volume_of_a_4d_scan_does_not_carry_per_volume_keys(tmp_path: Path,
                                                                 mr_slice: MedImage) -> None:
    """A volume read from a 4D BOLD file (`@volume=1`) is saved with the file's acquisition but
    not its per-volume times, which name the volumes of a file it no longer is."""
    bold = np.stack([np.stack([mr_slice.array] * 4, axis=-1)] * 3, axis=-1).astype(np.int16)
    path = tmp_path / "sub-01_task-rest_bold.nii.gz"
    nib.save(nib.Nifti1Image(bold, np.diag([0.9, 0.9, 3.0, 1.0])), path)
    path.with_name("sub-01_task-rest_bold.json").write_text(json.dumps(
        {"RepetitionTime": 2.0, "VolumeTiming": [0.0, 2.0, 4.0], "TaskName": "rest"}))
    written = save(load(f"{path}@volume=1"), tmp_path / "out" / "vol1.nii.gz")
    side = json.loads(written.with_name("vol1.json").read_text())
    assert (side["RepetitionTime"], side["TaskName"]) == (2.0, "rest")
    assert "VolumeTiming" not in side
