"""Shared fixtures: real images from installed packages, read without medq's own I/O."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from medq.image import MedImage


def dicom_testfile(name: str) -> str:
    """Path of one of pydicom's bundled test files (never downloads)."""
    path = get_testdata_file(name, download=False)
    if path is None:  # the acceptance tests rely on these files: a missing one is a failure
        pytest.fail(f"pydicom test file {name} is not bundled with this pydicom")
    return str(path)


MEDQ = [sys.executable, "-m", "medq.cli"]
"""The `medq` command in a new interpreter."""


def run_medq(*args: object, cwd: Path | str | None = None, env: dict[str, str] | None = None,
             new_process: bool = False) -> subprocess.CompletedProcess[str]:
    """Run `medq ARGS` and return its exit code, stdout and stderr.

    By default the command line runs in this test's interpreter (the same Typer app, argument
    parsing, error lines and exit codes, without the seconds a new interpreter takes to import
    torch and medq). `new_process=True` runs it as its own process, for what only a process
    shows: start-up imports, the last-resort handler of internal errors, signals, forked
    workers' terminal output. `env`: variables set for the run (`COLUMNS` sizes the tables, as
    in a new process)."""
    argv = [str(a) for a in args]
    extra = dict(env or {})
    if new_process:
        full = dict(os.environ, **extra)
        full.pop("MEDQ_DEBUG", None)
        return subprocess.run([*MEDQ, *argv], capture_output=True, text=True, cwd=cwd,
                              env=full, timeout=600)
    from typer.testing import CliRunner

    from medq.cli import app, common

    extra.setdefault("MEDQ_DEBUG", None)  # type: ignore[arg-type]
    hook, command_line = sys.excepthook, sys.argv
    widths = common.out.width, common.err.width
    columns = extra.get("COLUMNS") or os.environ.get("COLUMNS")
    try:
        sys.argv = ["medq", *argv]  # what the command reads of its own command line
        for stream in (common.out, common.err):  # as a new process on a pipe sizes them
            stream.width = int(columns) if columns else common.PIPE_WIDTH
        with contextlib.chdir(cwd or os.getcwd()):
            result = CliRunner().invoke(app, argv, prog_name="medq", env=extra)
    finally:
        sys.excepthook, sys.argv = hook, command_line
        common.out.width, common.err.width = widths
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # an internal error: the test shows its traceback
    return subprocess.CompletedProcess(["medq", *argv], result.exit_code, result.stdout,
                                       result.stderr)


def _dicom_slice(name: str, modality: str, region: str) -> MedImage:
    ds = dcmread(dicom_testfile(name))
    arr = ds.pixel_array.astype(np.float32) * float(getattr(ds, "RescaleSlope", 1)) + float(
        getattr(ds, "RescaleIntercept", 0))
    sp = tuple(float(s) for s in ds.PixelSpacing)
    return MedImage(arr, sp, modality, region, source=dicom_testfile(name))


@pytest.fixture(scope="session")
def ct_slice() -> MedImage:
    """pydicom's CT_small.dcm in HU (128×128, 0.66 mm)."""
    return _dicom_slice("CT_small.dcm", "CT", "unknown")


@pytest.fixture(scope="session")
def mr_slice() -> MedImage:
    """pydicom's MR_small.dcm (64×64)."""
    return _dicom_slice("MR_small.dcm", "MR", "unknown")


@pytest.fixture(scope="session")
def mr_abdomen_slice() -> MedImage:
    """pydicom's examples_overlay.dcm: an axial abdominal MR (300×484) with the arms beside it."""
    return _dicom_slice("examples_overlay.dcm", "MR", "abdomen")


@pytest.fixture(scope="session")
def mni_t1() -> MedImage:
    """nilearn's bundled MNI152 T1 template as a (z, y, x) volume, 1 mm."""
    from nilearn.datasets import load_mni152_template

    img = load_mni152_template(resolution=2)
    arr = np.transpose(np.asarray(img.get_fdata(), dtype=np.float32), (2, 1, 0))
    return MedImage(arr, (2.0, 2.0, 2.0), "MR", "brain")


@pytest.fixture(scope="session")
def retina() -> MedImage:
    """scikit-image's bundled fundus photograph, RGB in [0, 1]."""
    from skimage.data import retina as _retina

    return MedImage(_retina().astype(np.float32) / 255.0, (1.0, 1.0), "OP", "retina")


def train_test_config(tmp_path_factory: pytest.TempPathFactory, config: str) -> dict:
    """Train `configs/<config>.yaml` into a fresh folder with its own cache (`MEDQ_CACHE_DIR`)."""
    import os
    from pathlib import Path

    from medq.train.config import load_config
    from medq.train.loop import train

    root = tmp_path_factory.mktemp(config)
    os.environ["MEDQ_CACHE_DIR"] = str(root / "cache")
    cfg = load_config(Path(__file__).parents[1] / "configs" / f"{config}.yaml")
    cfg.output = str(root / "run")
    record = train(cfg, log=lambda msg: None)
    return {"record": record, "checkpoint": root / "run" / "model.pt", "folder": root / "run",
            "config": cfg}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A mediqa-tiny model trained by `train()` from configs/mediqa_tiny_test.yaml (≈ 30 s)."""
    return train_test_config(tmp_path_factory, "mediqa_tiny_test")


@pytest.fixture(scope="module")
def restore_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny restoration network trained by `medq train configs/restore_tiny_test.yaml`."""
    return train_test_config(tmp_path_factory, "restore_tiny_test")


@pytest.fixture(scope="session")
def radiograph_twins(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The skull radiograph sample as a MONOCHROME2 DICOM file and its MONOCHROME1 twin (the
    stored values mirrored within the range of its bits stored, as a CR/DX system stores the
    same picture)."""
    import medq
    from medq.data.samples import load_sample

    folder = tmp_path_factory.mktemp("twins")
    plain = Path(medq.save(load_sample("xr_head"), folder / "monochrome2.dcm"))
    ds = dcmread(plain)
    stored = ds.pixel_array
    assert ds.PixelRepresentation == 0  # unsigned: 0 … 2^bits − 1
    mirrored = 2 ** int(ds.BitsStored) - 1 - stored.astype(np.int64)
    ds.PixelData = mirrored.astype(stored.dtype).tobytes()
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(folder / "monochrome1.dcm")
    return plain, folder / "monochrome1.dcm"


SIEMENS_MOSAIC = Path(__import__("nibabel").__file__).parent / "tests" / "data" / "0.dcm"
"""nibabel's Siemens diffusion mosaic header (its pixels shrunk to 256², no longer whole tiles)."""


def siemens_mosaic(volume: MedImage, path: Path, start: int = 0) -> np.ndarray:
    """Write 8 slices (96² each, from `start`) of a volume as a Siemens mosaic on a 3×3 grid (the
    last tile empty) in nibabel's real Siemens header; returns the slices as medq reads them."""
    nz, ny, nx = volume.array.shape
    y, x = (ny - 96) // 2, (nx - 96) // 2
    slices = volume.array[start:start + 16:2, y:y + 96, x:x + 96]
    slices = np.round(slices / slices.max() * 4000).astype(np.float32)
    grid = np.zeros((9, 96, 96), np.float32)
    grid[:8] = slices
    mosaic = grid.reshape(3, 3, 96, 96).transpose(0, 2, 1, 3).reshape(288, 288)
    ds = dcmread(SIEMENS_MOSAIC)
    ds.Rows, ds.Columns = mosaic.shape
    ds.PixelData = mosaic.astype(np.uint16).tobytes()
    ds[0x0019, 0x100A].value = 8
    ds.InstanceNumber = start
    from pydicom.uid import generate_uid

    ds.SOPInstanceUID = generate_uid()
    ds.save_as(path)
    return slices


TINY_PET = SIEMENS_MOSAIC.parent / "tinypet.v"
"""nibabel's ECAT 7 file (a 10×10×3 frame of an FDG brain scan): its headers are the
template of `ecat_pet`."""


def ecat_pet(frames: list[np.ndarray], path: Path, spacing_mm: tuple[float, float, float]
             ) -> Path:
    """Write frames `(z, y, x)` of one shape as a dynamic ECAT 7 file in nibabel's real ECAT
    headers: the main header, one directory block, then per frame a subheader and its
    big-endian int16 voxels (x fastest), each frame with its own scale factor; returns `path`."""
    from nibabel import ecat

    template = ecat.load(str(TINY_PET))
    header = template.header._structarr.copy()
    header["num_frames"], header["num_planes"] = len(frames), frames[0].shape[0]
    header["ecat_calibration_factor"] = 1.0
    directory = np.zeros(128, ">i4")
    directory[:4] = (31 - len(frames), 2, 0, len(frames))
    blocks, start = [], 3  # 1-based: main header, directory, then each subheader and its data
    for k, frame in enumerate(frames):
        sub = template.get_subheaders().subheaders[0].copy()
        nz, ny, nx = frame.shape
        sub["x_dimension"], sub["y_dimension"], sub["z_dimension"] = nx, ny, nz
        sub["x_pixel_size"], sub["y_pixel_size"] = spacing_mm[2] / 10, spacing_mm[1] / 10
        sub["z_pixel_size"] = spacing_mm[0] / 10  # ECAT states centimetres
        scale = float(np.abs(frame).max()) / 32000 or 1.0
        sub["scale_factor"], sub["frame_start_time"] = scale, 60000 * k
        voxels = np.round(frame / scale).astype(">i2").transpose(2, 1, 0).tobytes(order="F")
        voxels += b"\0" * (-len(voxels) % 512)
        directory[4 + 4 * k: 8 + 4 * k] = (k + 1, start, start + len(voxels) // 512, 1)
        blocks += [sub.tobytes().ljust(512, b"\0"), voxels]
        start += 1 + len(voxels) // 512
    path.write_bytes(header.tobytes() + directory.tobytes() + b"".join(blocks))
    return path
