"""Where an export or a report may be written: never over the results database, an image
whose results it holds, or a sidecar medq reads beside one (`refuse_output`)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from medq.errors import InvalidParameter
from medq.io.dicom_series import SERIES_MARK
from medq.io.sidecar import own_sidecar_path, sidecar_path
from medq.io.volumes import VOLUME_MARK
from medq.qc.schema import items_table


def refuse_output(engine: Engine, database_file: Path | None, output: str | Path) -> None:
    """InvalidParameter (naming `output`) when writing there would replace the database (its
    SQLite file or journal), an image whose results it holds (a file, a member of a stored
    series, a 4D file stored by volume) or that image's JSON sidecar (its modality, physics and
    degradation record: `medq info` read a PET that lost it as OT)."""
    target = Path(output).expanduser().resolve()
    if database_file is not None:
        stem = str(database_file)
        if str(target) in (stem, *(stem + end for end in ("-wal", "-shm", "-journal"))):
            raise InvalidParameter("that is the results database itself; write the output "
                                   "elsewhere", output)
    path = items_table.c.path
    held = path.in_([str(target), str(output)])
    if target.is_file():  # a member of a series item, or a 4D file stored by volume
        folder = str(target.parent)
        held |= path == folder
        held |= path.startswith(folder + SERIES_MARK, autoescape=True)
        held |= path.startswith(str(target) + VOLUME_MARK, autoescape=True)
    with engine.connect() as conn:
        found = conn.execute(sa.select(path).where(held).limit(1)).first()
        if found is None and target.suffix.lower() == ".json":
            found = _sidecar_of(conn, target)
    if found is not None:
        raise InvalidParameter(f"that is an image of the results ({found[0]}), or its sidecar; "
                               "write the output elsewhere (medq never overwrites what it "
                               "reads)", output)


def _sidecar_of(conn: sa.Connection, target: Path) -> tuple[str] | None:
    """The stored item whose sidecar `target` is (`scan.json` of `scan.nii.gz`, `scan.png.json`,
    `pet.json` of the series folder `pet`), or None."""
    stem = str(target.with_suffix(""))
    path = items_table.c.path
    rows = conn.execute(sa.select(path).where(path.startswith(stem, autoescape=True)))
    for (stored,) in rows:
        image = stored.split(SERIES_MARK)[0].split(VOLUME_MARK)[0]
        if target in (sidecar_path(image), own_sidecar_path(image)):
            return (stored,)
    return None
