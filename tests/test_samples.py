"""Bundled samples load as real images, and the demo gallery is built from them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from medq.data.samples import SAMPLES, get_sample, load_sample, load_tissue_maps
from medq.errors import InvalidParameter

EXPECTED = {
    "ct_small": ("CT", 2),
    "mr_small": ("MR", 2),
    "mni_t1": ("MR", 3),
    "retina": ("OP", 3),
    "pet_brain": ("PT", 3),
    "xr_head": ("DX", 2),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_sample_loads_with_modality_and_finite_pixels(name: str) -> None:
    image = load_sample(name)
    modality, ndim = EXPECTED[name]
    assert image.modality == modality
    assert image.array.ndim == ndim
    assert np.isfinite(image.array).all()
    assert image.array.std() > 0
    assert image.meta["sample"] == name


def test_ct_sample_is_in_hounsfield_units() -> None:
    ct = load_sample("ct_small")
    assert ct.array.min() < -800  # air outside the body
    assert 0 < np.median(ct.array[ct.array > -200]) < 200  # soft tissue
    assert ct.physics["kvp"] == 120


def test_volume_sample_is_brain_with_1mm_spacing() -> None:
    t1 = load_sample("mni_t1")
    assert t1.region == "brain"
    assert t1.spacing == pytest.approx((1.0, 1.0, 1.0))


def test_tissue_maps_are_probabilities_on_the_template_grid() -> None:
    maps = load_tissue_maps(resolution=2)
    t1 = load_sample("mni_t1")
    for m in maps.values():
        assert m.spacing == (2.0, 2.0, 2.0)
        assert all(abs(2 * a - b) <= 2 for a, b in zip(m.shape, t1.shape, strict=True))
        assert m.array.min() >= 0.0 and m.array.max() <= 1.0 + 1e-5
    assert (maps["gm"].array > 0.5).sum() > 1000 and (maps["wm"].array > 0.5).sum() > 1000


def test_an_exported_dicom_sample_reads_as_the_region_it_is_listed_with(tmp_path: Path) -> None:
    """CT_small states no BodyPartExamined: its exported copy states the listed region (the only
    change to it), so `medq info` on the file reads "spine" as `medq samples` lists it; MR_small,
    listed without a region, is copied as it is."""
    import pydicom

    from medq.data.samples import export_samples
    from medq.io import load

    ct, mr = export_samples(tmp_path, ["ct_small", "mr_small"])
    assert SAMPLES["ct_small"].region == "spine" and load(ct).region == "spine"
    copy, source = pydicom.dcmread(ct), pydicom.dcmread(SAMPLES["ct_small"].path())
    assert "BodyPartExamined" not in source and copy.BodyPartExamined == "SPINE"
    del copy.BodyPartExamined
    assert copy == source
    assert mr.read_bytes() == SAMPLES["mr_small"].path().read_bytes()


def test_the_mni_t1_sample_states_its_contrast_loaded_and_exported(tmp_path: Path) -> None:
    """The MNI T1 template's file names no contrast: the sample states T1 as the training
    sources of the same template do, loaded and in its exported sidecar, so both are assessed
    with the `mr_t1` prompt (the catch-all `mr_other` before)."""
    from medq.assess.prompts import prompts_from_image
    from medq.data.samples import export_samples
    from medq.io import load

    (exported,) = export_samples(tmp_path, ["mni_t1"])
    for image in (load_sample("mni_t1"), load(exported)):
        prompts = prompts_from_image(image)
        assert (prompts.type, prompts.source["type"]) == ("mr_t1", "tags")


def test_unknown_sample_lists_choices() -> None:
    with pytest.raises(InvalidParameter, match="ct_small"):
        get_sample("nope")
    assert set(EXPECTED) <= set(SAMPLES)


def test_gallery_has_every_degradation_at_three_severities(tmp_path: Path) -> None:
    from medq.degrade import available
    from medq.report.gallery import build_gallery

    index = build_gallery(tmp_path, samples=["ct_small", "mr_small"])
    html = index.read_text()
    n_rows = len(available("CT")) + len(available("MR"))
    # three severity tiles per row, and each sample's clean tile once (it was in every row)
    assert len(re.findall(r"<img class=\"tile\"", html)) == 3 * n_rows + 2
    for kind in available("CT") + available("MR"):
        assert f"<th>{kind}<br>" in html
    for name in ("ct_small.png", "mr_small.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_page_tiles_are_shrunk_to_twice_their_shown_size() -> None:
    """The demo page carried the 1411-px fundus photograph whole in every tile showing it 180
    px wide (24.7 MB); small images keep every pixel."""
    import base64
    import io

    from PIL import Image

    from medq.report.render import TILE_SIDE, png_data_uri

    def size(uri: str) -> tuple[int, int]:
        return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).size

    photo = np.random.default_rng(0).integers(0, 255, (1411, 1000, 3), dtype=np.uint8)
    assert size(png_data_uri(photo, TILE_SIDE)) == (255, 360)
    assert size(png_data_uri(photo[:128, :100], TILE_SIDE)) == (100, 128)
