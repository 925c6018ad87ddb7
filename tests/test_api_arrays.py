"""The Python API on NumPy arrays: `medq.io.from_array`/`as_image` and `medq.assess`,
`medq.describe`, `medq.restore` given arrays, on real images from installed packages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage.data import camera
from skimage.data import retina as retina_pixels

import medq
from conftest import dicom_testfile
from medq.assess.predictor import Assessor
from medq.data.samples import load_sample
from medq.errors import InvalidImage, InvalidParameter, UnsupportedImage
from medq.image import MedImage
from medq.io import as_image, from_array, load, save


def test_grey_array_is_an_image_in_its_own_units() -> None:
    pixels = camera()
    image = from_array(pixels)
    assert image.shape == (512, 512) and image.array.dtype == np.float32
    np.testing.assert_array_equal(image.array, pixels.astype(np.float32))
    assert (image.modality, image.region, image.spacing) == ("OT", "unknown", (1.0, 1.0))
    assert image.meta["spacing_assumed"] and image.meta["dtype"] == "uint8"
    assert from_array(pixels[..., None]).shape == (512, 512)  # a trailing channel of one
    told = from_array(pixels, spacing=0.5, modality="dx", region="chest")
    assert (told.modality, told.region, told.spacing) == ("DX", "chest", (0.5, 0.5))
    assert not told.meta["spacing_assumed"]


def test_a_tiny_colour_array_named_a_photograph_is_colour_whatever_spacing_is_given() -> None:
    corner = retina_pixels()[700:704, 700:704]  # (4, 4, 3): too small to be taken for colour
    assert not from_array(corner).is_rgb  # unnamed: a 3-slice grey volume, as documented
    for spacing in (None, 0.5, (0.5, 0.5)):
        image = as_image(corner, modality="OP", spacing=spacing)
        assert image.is_rgb and image.meta["colour_scale"] == 255.0
        np.testing.assert_allclose(image.array, corner / 255.0, atol=1e-6)
    blurred, _ = medq.simulate(corner, "blur", severity="mild", modality="OP", spacing=0.5)
    assert blurred.is_rgb and blurred.shape == (4, 4, 3)


def test_a_torch_tensor_is_an_array(ct_slice: MedImage) -> None:
    import torch

    tensor = torch.from_numpy(ct_slice.array).to(torch.bfloat16).requires_grad_(True)
    image = as_image(tensor, spacing=ct_slice.spacing)
    assert image.modality == "CT" and image.meta["dtype"] == "float32"
    np.testing.assert_allclose(image.array, ct_slice.array, rtol=1 / 128, atol=1.0)


def test_colour_array_is_a_photograph_scaled_to_one() -> None:
    pixels = retina_pixels()
    image = from_array(pixels)
    assert image.modality == "OP" and image.is_rgb and not image.is_volume
    np.testing.assert_allclose(image.array, pixels / 255.0, atol=1e-6)
    rgba = np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 7, np.uint8)], axis=-1)
    np.testing.assert_array_equal(from_array(rgba).array, image.array)  # alpha dropped
    np.testing.assert_array_equal(from_array(pixels / 255.0).array, image.array.astype(np.float64)
                                  .astype(np.float32))
    with pytest.raises(UnsupportedImage, match="colour channels last.*not CT"):
        from_array(pixels, modality="CT")
    spotted = pixels / 255.0
    spotted[0, 0, 0] = np.nan  # a NaN pixel is read as the others (not a scale of "nan")
    read = from_array(spotted)
    assert read.meta["colour_scale"] == 1.0 and read.meta["nonfinite_fraction"] > 0
    np.testing.assert_allclose(read.array[1:], image.array[1:], atol=1e-6)


def test_hounsfield_array_is_read_as_ct(ct_slice: MedImage) -> None:
    assert as_image(ct_slice.array).modality == "CT"
    assert from_array(ct_slice.array).modality == "OT"  # inference is as_image's, as load's
    assert as_image(ct_slice.array + 1024.0).modality == "OT"  # stored values, not HU
    assert as_image(ct_slice.array, modality="MR").modality == "MR"  # the caller decides


@pytest.mark.parametrize(("array", "error", "words"), [
    (np.zeros((2, 3, 4, 5)), UnsupportedImage, "shape (2, 3, 4, 5) is not a 2D"),
    (np.zeros(7), UnsupportedImage, "shape (7,)"),
    (np.zeros((0, 4)), UnsupportedImage, "shape (0, 4)"),
    (np.ones((64, 64), complex), UnsupportedImage, "complex values"),
    (np.array([["a", "b"], ["c", "d"]]), UnsupportedImage, "dtype <U1"),
    ([[1.0, 2.0], [3.0]], UnsupportedImage, "not an array"),
    (["a.dcm", "b.dcm"], UnsupportedImage, "for many inputs use medq.assess.predictor.Assessor"),
    (np.full((64, 64), np.nan), InvalidImage, "NaN or infinite"),
])
def test_what_is_not_an_image_is_refused_in_one_line(array, error, words) -> None:
    with pytest.raises(error) as caught:
        as_image(array)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_partial_nan_and_spacing_rules(ct_slice: MedImage) -> None:
    holed = ct_slice.array.copy()
    holed[:4] = np.nan
    image = as_image(holed, spacing=ct_slice.spacing)
    assert np.isfinite(image.array).all() and image.meta["nonfinite_fraction"] == pytest.approx(
        4 / 128)
    assert image.spacing == ct_slice.spacing
    import medq

    found = medq.assess(holed, modality="CT", spacing=ct_slice.spacing, measures=False)
    assert found.nonfinite_fraction == pytest.approx(4 / 128)  # said, not only repaired
    assert medq.assess(ct_slice.array, modality="CT", spacing=ct_slice.spacing,
                       measures=False).nonfinite_fraction is None
    with pytest.raises(InvalidParameter, match="does not fit"):
        as_image(ct_slice.array, spacing=(1.0, 1.0, 1.0))
    assert image.array[0, 0] == ct_slice.array.min()  # CT goes below 0: its smallest (air)
    with pytest.raises(InvalidParameter, match="one number per axis"):
        as_image(ct_slice.array, spacing="thin")
    with pytest.raises(InvalidParameter, match="unknown modality"):
        as_image(ct_slice.array, modality="XX")


def test_a_map_whose_background_is_nan_reads_as_a_dark_background() -> None:
    """A skull-stripped MR stored with NaN outside the head was read with its background at the
    image's darkest tissue value and scored 2.59 instead of 4.11, with findings; NaN is no
    signal, 0, for an image that does not go below 0."""
    import medq

    slab = load_sample("mni_t1").array[60:120]
    masked = slab.copy()
    masked[masked <= 0] = np.nan
    assert as_image(masked).array[0, 0, 0] == 0.0
    clean = medq.assess(slab, modality="MR", spacing=1.0, measures=False)
    read = medq.assess(masked, modality="MR", spacing=1.0, measures=False)
    assert read.score == pytest.approx(clean.score, abs=0.05) and read.findings == clean.findings


def test_a_colour_npy_file_is_a_photograph(tmp_path: Path) -> None:
    np.save(tmp_path / "fundus.npy", retina_pixels())
    image = load(tmp_path / "fundus.npy")
    assert image.modality == "OP" and image.is_rgb and image.meta["format"] == "npy"


def test_assess_an_array_as_its_medimage(ct_slice: MedImage) -> None:
    told = medq.assess(ct_slice.array, modality="CT", spacing=ct_slice.spacing)
    same = medq.assess(MedImage(ct_slice.array, ct_slice.spacing, "CT"))
    assert told.score == same.score and told.findings == same.findings
    assert told.modality == "CT" and told.path is None
    rng = np.random.default_rng(0)
    noisy = ct_slice.array + rng.normal(0.0, 120.0, ct_slice.shape)
    worse = medq.assess(noisy, modality="CT", spacing=ct_slice.spacing)
    assert worse.score < told.score - 0.5
    assert "noise" in {f["type"] for f in worse.findings}


def test_assess_many_takes_arrays_paths_and_images_with_errors_in_place(
        ct_slice: MedImage) -> None:
    results = Assessor("mediqa-s", measures=False).assess_many(
        [ct_slice.array, np.zeros((64, 64)), dicom_testfile("CT_small.dcm"), ct_slice])
    assert [type(r).__name__ for r in results] == ["Assessment", "InvalidImage", "Assessment",
                                                   "Assessment"]
    assert results[1].path is None and "blank" in results[1].reason
    assert results[2].path == dicom_testfile("CT_small.dcm")


def test_a_path_takes_the_modality_it_is_told(mr_slice: MedImage) -> None:
    read_as = medq.assess(dicom_testfile("MR_small.dcm"), modality="CT")
    assert read_as.modality == "CT"
    assert medq.assess(dicom_testfile("MR_small.dcm")).modality == "MR"


def test_the_python_api_takes_the_modality_aliases_the_command_line_takes(
        mr_slice: MedImage) -> None:
    """`--modality XR` (or PET, MRI) works on the command line; medq.assess, describe and
    restore refused them ("unknown modality 'XR'")."""
    plane = mr_slice.array
    assert medq.assess(plane, modality="MRI", measures=False).modality == "MR"
    assert medq.assess(plane, modality="xr", measures=False).modality == "DX"
    assert medq.describe(plane, modality="PET").modality == "PT"
    assert medq.restore(plane, modality="MRI", method="tv").array.shape == plane.shape


def test_describe_and_restore_an_array(ct_slice: MedImage) -> None:
    noisy, _ = medq.simulate(ct_slice, "ct_low_dose", severity="severe", seed=1)
    report = medq.describe(noisy.array, modality="CT", spacing=noisy.spacing)
    assert "noise" in {f.type for f in report.findings}
    assert report.text.endswith(f"Overall, the quality of this image is {report.verdict}.")
    result = medq.restore(noisy.array, modality="CT", spacing=noisy.spacing)
    assert isinstance(result.array, np.ndarray) and result.array.shape == ct_slice.shape
    assert result.changed and "noise" in result.findings_addressed
    assert result.after > result.before
    err = np.abs(result.array - ct_slice.array).mean()
    assert err < np.abs(noisy.array - ct_slice.array).mean()
    # a channel-first plane (1, y, x) comes back in that shape, with the same pixels
    first = medq.restore(noisy.array[None], modality="CT", spacing=(1.0, *noisy.spacing))
    assert first.array.shape == (1, *ct_slice.shape)
    np.testing.assert_array_equal(first.array[0], result.array)


def test_simulate_an_array(mr_slice: MedImage) -> None:
    told = dict(modality="MR", spacing=mr_slice.spacing)
    out, record = medq.simulate(mr_slice.array, "mr_noise", severity="moderate", seed=3, **told)
    same, _ = medq.simulate(mr_slice, "mr_noise", severity="moderate", seed=3)
    np.testing.assert_array_equal(out.array, same.array)
    assert record.severity == "moderate" and out.array.shape == mr_slice.shape
    with pytest.raises(UnsupportedImage, match="pass --modality"):  # an array states nothing
        medq.simulate(mr_slice.array, "mr_noise", severity="moderate")


def test_save_an_array_and_read_it_back(tmp_path: Path, ct_slice: MedImage) -> None:
    written = medq.save(ct_slice.array, tmp_path / "ct.dcm", modality="CT",
                        spacing=ct_slice.spacing)
    back = load(written)
    assert back.modality == "CT" and back.spacing == pytest.approx(ct_slice.spacing)
    np.testing.assert_allclose(back.array, ct_slice.array, atol=0.5)  # stored as integers
    nifti = load(medq.save(ct_slice.array, tmp_path / "ct.nii.gz", spacing=0.5))
    assert nifti.modality == "CT" and nifti.spacing == (0.5, 0.5)  # Hounsfield values: CT
    holed = ct_slice.array.copy()
    holed[0, 0] = np.nan
    with pytest.raises(InvalidImage, match="NaN or infinite pixels in this format"):
        medq.save(holed, tmp_path / "holed.png")
    assert not (tmp_path / "holed.png").exists()
    kept = np.load(medq.save(holed, tmp_path / "holed.npy"))  # a float format keeps them
    assert np.isnan(kept[0, 0]) and np.array_equal(kept[1:], holed[1:].astype(np.float32))


def test_an_array_saved_as_png_keeps_every_level_it_needs(tmp_path: Path) -> None:
    # a 12-bit radiograph's counts need a 16-bit PNG; 8-bit values stay an 8-bit one
    from PIL import Image

    counts = np.asarray(camera(), dtype=np.uint16) * 16  # 0–4080
    written = medq.save(counts, tmp_path / "counts.png")
    assert Image.open(written).mode.startswith("I")  # 16-bit grey
    np.testing.assert_array_equal(load(written).array, counts)
    eight = medq.save(camera(), tmp_path / "camera.png")
    assert Image.open(eight).mode == "L"
    np.testing.assert_array_equal(load(eight).array, camera())


def test_the_stage_entry_points_show_their_own_signatures_and_docs() -> None:
    """A notebook user sees `medq.assess`'s parameters (not `*args, **kwargs`) and its docstring
    first in `help()`, and `dir(medq)` lists the public API only."""
    import inspect

    for entry, wanted in ((medq.assess, {"image", "model", "measures", "modality", "spacing"}),
                          (medq.describe, {"image", "model", "modality", "region"}),
                          (medq.restore, {"image", "method", "assessment", "modality"})):
        assert wanted <= set(inspect.signature(entry).parameters)
        assert entry.__doc__.startswith(f"{entry.__name__}(image")
    assert "Any" not in dir(medq) and {"assess", "load", "MedImage"} <= set(dir(medq))
    assert medq.assess.iqms.__name__ == "medq.assess.iqms"  # still a package of submodules


def test_load_refuses_an_array_and_describe_an_assessment_with_the_way_to_do_it() -> None:
    array = np.random.default_rng(0).random((32, 32))
    with pytest.raises(InvalidParameter, match="reads a file or folder path, not a ndarray"):
        medq.load(array)
    with pytest.raises(InvalidParameter, match=r"not its Assessment: .*report_from"):
        medq.describe(medq.assess(array))


def test_a_one_slice_array_is_a_plane_and_a_list_of_images_is_refused(ct_slice: MedImage
                                                                      ) -> None:
    """`(1, y, x)` (a channel-first tensor's plane) was graded as a one-slice volume, another
    score than the same plane; a list of planes was stacked into a volume without a word; a
    modality medq does not grade was taken in Python, refused on the command line."""
    import torch

    from medq.errors import InvalidParameter, UnsupportedImage

    plane = np.asarray(ct_slice.array, dtype=np.float32)
    flat = medq.assess(plane, modality="CT", measures=False)
    for stacked in (plane[None], torch.from_numpy(plane)[None]):
        one = medq.assess(stacked, modality="CT", measures=False)
        assert one.score == flat.score and one.prompts == flat.prompts
    with pytest.raises(UnsupportedImage, match="a list of 2 images: for many inputs use"):
        medq.assess([plane, plane], modality="CT")
    # one spacing per axis the caller gave: the dropped axis' entry goes with it
    assert from_array(plane[None], spacing=(3.0, 0.5, 0.6)).spacing == (0.5, 0.6)
    assert from_array(plane[..., None], spacing=(0.5, 0.6, 3.0)).spacing == (0.5, 0.6)
    from medq.io.units import in_hounsfield_units

    assert in_hounsfield_units(plane) and not in_hounsfield_units(plane * 1e30)  # read as CT
    for entry in (medq.assess, medq.describe):
        with pytest.raises(InvalidParameter, match="'US' is not a modality medq grades"):
            entry(plane, modality="US")


def test_spacing_colour_and_empty_path_refusals_say_what_is_wrong(ct_slice: MedImage,
                                                                  retina: MedImage,
                                                                  tmp_path: Path) -> None:
    from medq.errors import InvalidParameter

    plane = np.asarray(ct_slice.array, dtype=np.float32)
    for spacing in (0.0, -1.0, float("nan")):  # "spacing (0.0, 0.0) does not fit shape …"
        with pytest.raises(InvalidParameter, match="spacing must be positive and finite"):
            medq.assess(plane, spacing=spacing)
    photo = medq.save(retina, tmp_path / "retina.png")
    with pytest.raises(InvalidParameter, match="only a photograph \\(OP\\) is colour"):
        load(photo, modality="CT")
    with pytest.raises(InvalidParameter, match="an empty path names no file"):
        load("")  # it read the current folder


def test_restoring_a_colour_array_gives_it_back_in_its_own_units() -> None:
    # an 8-bit RGB photograph comes back on 0–255 (the MedImage keeps 0–1), never outside the
    # colour range, whether the network ran or the gate left it as it was
    rgb = retina_pixels()[::6, ::6]  # 8-bit, 0–255
    forced = medq.restore(rgb, force=True, reassess=False)
    assert forced.changed and forced.array.shape == rgb.shape
    assert forced.array.min() >= 0.0 and forced.array.max() <= 255.0 and forced.array.max() > 200
    assert forced.image.array.min() >= 0.0 and forced.image.array.max() <= 1.0
    kept = medq.restore(rgb, reassess=False)  # the gate finds nothing to repair on it
    assert not kept.changed
    np.testing.assert_allclose(kept.array, rgb, atol=1e-3)
    unit = medq.restore(rgb / 255.0, force=True, reassess=False)
    assert unit.array.max() <= 1.0


def test_assess_many_refuses_one_input_and_report_from_takes_an_array(ct_slice: MedImage
                                                                      ) -> None:
    # one array or path given to assess_many was iterated over (64 rows, or the path's letters)
    assessor = Assessor("mediqa-s", measures=False)
    for one in (ct_slice.array, dicom_testfile("CT_small.dcm"), ct_slice):
        with pytest.raises(InvalidParameter, match="takes a sequence of inputs"):
            assessor.assess_many(one)
    for bad in (0, -1, "a", 2.5, True):
        with pytest.raises(InvalidParameter, match="batch_size must be a whole number"):
            Assessor("mediqa-s", batch_size=bad)
    from medq.describe import report_from

    assessment = medq.assess(ct_slice.array, modality="CT", spacing=ct_slice.spacing)
    from_array = report_from(assessment, ct_slice.array)  # as the README's arrays rule says
    from_image = report_from(assessment, ct_slice)
    assert [(f.type, f.location) for f in from_array.findings] == \
        [(f.type, f.location) for f in from_image.findings] != []  # spacing assumed: 1 mm
    for wrong in (None, ct_slice.array, "CT_small.dcm"):
        with pytest.raises(InvalidParameter, match="report_from takes an Assessment"):
            report_from(wrong)


def test_wrong_kinds_of_argument_are_refused_in_one_typed_line(ct_slice: MedImage,
                                                               tmp_path: Path) -> None:
    # each gave a bare TypeError/ValueError/AttributeError from deep inside
    from medq.errors import InvalidImage

    for wrong in (None, {"a": 1}):  # "array of dtype object is not a real image"
        with pytest.raises(UnsupportedImage, match="expected a path, a MedImage or an array, "
                                                   f"got {type(wrong).__name__}"):
            medq.assess(wrong)
    with pytest.raises(InvalidParameter, match="save needs a file or folder path, got 5"):
        medq.save(ct_slice.array, 5)
    with pytest.raises(InvalidParameter, match="got None"):
        medq.save(ct_slice.array, None)
    with pytest.raises(InvalidImage, match="pixels must be real numbers"):
        MedImage(np.array([["a", "b"], ["c", "d"]]), (1.0, 1.0), "CT", "head")
    with pytest.raises(InvalidParameter, match="spacing must be numbers"):
        MedImage(ct_slice.array, ("a", 1.0), "CT", "head")
    with pytest.raises(InvalidParameter, match="assessment must be the Assessment"):
        medq.restore(ct_slice, assessment="x")
    volume = ct_slice.evolve(array=np.stack([ct_slice.array] * 4),
                             spacing=(5.0, *ct_slice.spacing))
    with pytest.raises(InvalidParameter, match="the assessment is of a 2D image, this image is 3D"):
        medq.restore(volume, assessment=medq.assess(ct_slice))
    # an assessment of another image of the same dimension was taken for this one's
    from medq.describe import report_from

    own = medq.assess(ct_slice)
    part = ct_slice.evolve(array=ct_slice.array[:64])
    shape = r"the assessment is of an image of shape \(128, 128\), this image is \(64, 128\)"
    with pytest.raises(InvalidParameter, match=shape):
        medq.restore(part, assessment=own)
    with pytest.raises(InvalidParameter, match=shape):
        report_from(own, part.array)
    assert report_from(own, ct_slice).verdict == medq.describe(ct_slice).verdict
    assert not list(tmp_path.iterdir())


def test_an_assessment_gives_the_caller_s_thread_count_back(ct_slice: MedImage) -> None:
    import torch

    own = torch.get_num_threads()
    assessor = Assessor(threads=2)  # its own count differs from the caller's below
    try:
        torch.set_num_threads(1)  # the caller's choice after the model was loaded
        assessor.assess(ct_slice)
        assert torch.get_num_threads() == 1 and assessor.workers == 2
    finally:
        torch.set_num_threads(own)


def test_an_image_of_a_modality_medq_does_not_grade_is_refused_however_it_is_made(
        ct_slice: MedImage) -> None:
    ultrasound = ct_slice.evolve(modality="US")
    for call in (medq.assess, medq.describe):
        with pytest.raises(UnsupportedImage, match="modality US is not one medq grades"):
            call(ultrasound)
    with pytest.raises(UnsupportedImage, match="modality US"):
        medq.assess(from_array(ct_slice.array, modality="US"))


def test_a_description_of_an_assessed_array_reads_it_at_the_assessed_pixel_size(
        ct_slice: MedImage) -> None:
    from medq.describe import report_from

    pixels = ct_slice.array.copy()
    assessment = medq.assess(pixels, modality="CT", spacing=ct_slice.spacing)
    told = medq.describe(pixels, modality="CT", spacing=ct_slice.spacing)
    assert report_from(assessment, pixels).to_dict() == told.to_dict()
    assert "spacing" not in assessment.to_dict()


def test_a_quality_report_is_rebuilt_from_its_json(mr_slice: MedImage) -> None:
    import json

    from medq.describe.schema import QualityReport

    report = medq.describe(mr_slice)
    again = QualityReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report and all(type(f).__name__ == "Finding" for f in again.findings)


def test_channel_first_volumes_other_libraries_images_and_names_in_any_case(
        tmp_path: Path, mni_t1: MedImage) -> None:
    import nibabel as nib

    block = mni_t1.array[40:45, 20:84, 16:80]
    image = from_array(block[None], spacing=(1.0, 2.0, 2.0, 2.0))  # (1, z, y, x): one channel
    assert image.shape == block.shape and image.spacing == (2.0, 2.0, 2.0)
    assert image.meta["array_shape"] == [1, *block.shape]
    assert from_array(block[None], spacing=(3.0, 2.0, 2.0)).spacing == (3.0, 2.0, 2.0)
    with pytest.raises(UnsupportedImage, match=r"a batch of one colour picture \(1, c, y, x\)"):
        from_array(block[None, :3])  # (1, 3, y, x): torchvision's layout, or 3 slices?
    with pytest.raises(UnsupportedImage, match="4D array of 2 channels.*array\\[k\\]"):
        from_array(np.stack([block, block]))
    path = save(MedImage(block, (2.0, 2.0, 2.0), "MR", "brain"), tmp_path / "t1.nii.gz")
    with pytest.raises(UnsupportedImage, match="a nibabel Nifti1Image: give medq its file path"):
        as_image(nib.load(path))
    assert load(path, modality="MRI").modality == "MR"  # the aliases medq assess takes
    blurred, record = medq.simulate(block, "BLUR", severity="mild", modality="mri")
    assert blurred.modality == "MR" and record.name == "blur"
    with pytest.raises(InvalidParameter, match="outside 0.0001–10000 mm"):
        from_array(block, spacing=1e-9)  # metres given as millimetres, or the like


def test_an_integer_array_is_saved_in_its_own_type(tmp_path: Path, mni_t1: MedImage) -> None:
    import nibabel as nib

    block = np.round(mni_t1.array[40:44, 20:84, 16:80] * 1000).astype(np.int16)
    path = save(block, tmp_path / "labels.nii.gz", spacing=2.0)
    assert nib.load(path).get_data_dtype() == np.int16
    np.testing.assert_array_equal(load(path).array, block)
    floats = save(block + np.float32(0.5), tmp_path / "floats.nii.gz", spacing=2.0)
    assert nib.load(floats).get_data_dtype() == np.float32


def test_the_module_medq_names_in_its_messages_is_reachable_from_import_medq() -> None:
    """medq.load of an array says "make a MedImage with medq.io.from_array(array)", but after
    `import medq` that raised AttributeError: medq has no attribute 'io'."""
    import subprocess
    import sys

    code = ("import medq, numpy as np\n"
            "try:\n    medq.load(np.zeros((4, 4)))\nexcept medq.MedqError as e:\n"
            "    assert 'medq.io.from_array' in str(e)\n"
            "print(medq.io.from_array(np.zeros((8, 8)), modality='MR').shape)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "(8, 8)", done.stderr
