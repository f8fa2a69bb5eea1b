"""`vitnirs embed`: one bank-convention table → a table of embeddings (CSV or parquet).

The input is a text file (``.csv``, ``.tsv``, ``.txt``) read and validated exactly as ``vitnirs
prepare`` reads a bank file (:func:`vitnirs.data.csv.read_csv`,
:func:`vitnirs.data.validate.validate_table`), or a ``.parquet`` file with the same column
convention (:func:`read_parquet`): numeric headers
are the spectral axis, ``y_*`` columns are targets, every other column is metadata; the unit and
signal type come from ``--unit``/``--signal-type``, else the ``manifest.json`` of the file's
folder, else a ``signal_type`` column, else a guess (with a warning). Reflectance and
transmittance become absorbance log10(1/R), cm⁻¹ becomes nm.

The output has one row per data row of the input, in input order: the metadata and target
columns as read, then the embedding columns, under ``readout`` (default: the checkpoint's, as
``SpectralEmbedder(pooling="auto")``) and named by :func:`vitnirs.model.readout.feature_names`
(as :meth:`vitnirs.embedder.SpectralEmbedder.get_feature_names_out`): ``emb_g0_0 … emb_g7_{D-1}``
for ``groups8`` (the default shipped model's), ``emb_0 … emb_{D-1}`` for ``mean``, ``emb_0 …`` then
``emb_std_0 …`` / ``emb_max_0 …`` / ``level_mean, level_log_std`` for ``mean+std`` /
``mean+max`` / ``mean+level``; float32 (the encoder's
precision; a CSV gets at most 9 significant digits per cell). A row whose spectrum
``prepare`` would drop (every value missing, or constant) keeps its metadata and gets NaN
embeddings, with a warning naming it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from vitnirs.data.bank import BANK_SUFFIXES
from vitnirs.data.coverage import CoverageError
from vitnirs.data.csv import RawTable, read_csv
from vitnirs.data.declarations import Declaration, declaration, read_bank_manifest
from vitnirs.data.validate import validate_table
from vitnirs.embedding import (
    cached_encoder,
    check_readable,
    embed_absorbance,
    resolve_checkpoint,
    with_readout,
)
from vitnirs.errors import BadFileError, VitnirsError
from vitnirs.model.readout import feature_names

__all__ = ["INPUT_SUFFIXES", "OUTPUT_SUFFIXES", "embed_csv", "embed_table", "read_input", "read_parquet"]

INPUT_SUFFIXES = (*BANK_SUFFIXES, ".parquet")
OUTPUT_SUFFIXES = (".csv", ".parquet")


def _declared(path: Path, unit: str | None, signal_type: str | None) -> tuple[Declaration, list[str]]:
    """Command-line declarations over those of the folder's bank ``manifest.json``."""
    try:
        given = declaration(unit, signal_type, "--unit/--signal-type")
    except ValueError as err:
        raise VitnirsError(f"{path}: {err}") from None
    by_file, notes = read_bank_manifest(path.parent)
    return given.merged_under(by_file.get(path.name, Declaration())), notes


def read_parquet(path: str | Path) -> RawTable:
    """A parquet file in the bank's column convention as a :class:`RawTable`.

    Column names that parse as numbers (decimal point) are the spectral axis; the other
    columns keep their parquet types (a named or non-default index becomes a column).
    """
    source = str(path)
    try:
        frame = pd.read_parquet(path)
    except FileNotFoundError as err:
        raise BadFileError(source, f"cannot read the file ({err.strerror or err})") from None
    except Exception as err:  # pyarrow raises several types for a file that is not parquet
        raise BadFileError(source, f"not a readable parquet file ({type(err).__name__}: {err})") from None
    if frame.index.name is not None or not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    if not len(frame):
        raise BadFileError(source, "header only: the file has no data rows")
    header = [str(c).strip() for c in frame.columns]
    frame.columns = range(len(header))
    return RawTable(source=source, header=header, frame=frame, decimal=".")


def read_input(path: str | Path) -> RawTable:
    """The input of ``vitnirs embed``: a text file (:func:`read_csv`) or a parquet file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return read_parquet(path)
    if suffix not in BANK_SUFFIXES:
        raise VitnirsError(
            f"{path}: cannot read '{suffix or path.name}' files; the input must be a text table "
            f"({', '.join(BANK_SUFFIXES)}) or a .parquet file"
        )
    return read_csv(path)


def embed_table(
    input_csv: str | Path,
    *,
    checkpoint: str | Path = "default",
    batch_size: int = 256,
    device: str = "cpu",
    unit: str | None = None,
    signal_type: str | None = None,
    readout: str | None = None,
    progress: bool = False,
) -> tuple[pd.DataFrame, list[str]]:
    """Embed one bank table → ``(frame, warnings)``; ``frame`` is what :func:`embed_csv` writes.

    Parameters are those of :func:`embed_csv`. Bad input raises
    :class:`~vitnirs.errors.VitnirsError` naming the file.
    """
    import torch

    path = Path(input_csv)
    try:
        torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise VitnirsError(f"device {device!r} is not a torch device ({err})") from None
    declared, notes = _declared(path, unit, signal_type)
    # BadFileError (a VitnirsError) names the file, row and column
    validated = validate_table(read_input(path), name=path.stem, declared=declared)
    table = validated.table
    notes += [f"{path}: {note}" for note in table.warnings]
    if table.signal_type_stored != "absorbance":
        notes.append(
            f"{path}: the values are not absorbance ({table.signal_type_stored}); the encoder was "
            "pretrained on absorbance: declare the signal type (--signal-type) if it is known"
        )
    # metadata and targets of every row (the table keeps those of the usable rows only)
    columns = validated.row_columns()
    targets = [c for c in columns.columns if str(c).startswith("y_")]
    columns = columns[[c for c in columns.columns if c not in targets] + targets]

    try:
        ckpt = resolve_checkpoint(checkpoint)
        model, info = cached_encoder(ckpt, device)
        if readout is not None:  # else the checkpoint's (evaluation.readout of its config)
            info = with_readout(info, readout)
        # the coverage rule: CoverageError (naming the file) or warnings
        notes += check_readable(
            model, info, table.wavelengths_nm, source=str(path), axis=validated.axis, unit=declared.unit
        )
        Z = embed_absorbance(
            model,
            table.values.astype(np.float64),
            table.wavelengths_nm,
            info=info,
            batch_size=batch_size,
            device=device,
            progress=progress,
        )  # [n_usable, D]
    except CoverageError:
        raise
    except ValueError as err:
        raise VitnirsError(f"{path}: {err}") from None
    names = list(feature_names(int(model.encoder.d_model), info.readout))
    clash = sorted(set(names) & set(map(str, columns.columns)))
    if clash:
        raise VitnirsError(f"{path}: column(s) {', '.join(clash)} clash with the embedding columns")
    embedding = np.full((validated.n_rows, Z.shape[1]), np.nan, dtype=np.float32)  # the encoder's precision
    embedding[validated.kept_rows] = Z
    usable = np.zeros(validated.n_rows, dtype=bool)
    usable[validated.kept_rows] = True
    if not usable.all():
        rows = (np.flatnonzero(~usable) + 1).tolist()
        notes.append(
            f"{path}: {len(rows)} row(s) with no usable spectrum (empty or constant) get NaN "
            f"embeddings: data rows {', '.join(map(str, rows[:10]))}{' …' if len(rows) > 10 else ''}"
        )
    frame = pd.concat([columns, pd.DataFrame(embedding, columns=names)], axis=1)
    return frame, notes


def embed_csv(
    input_csv: str | Path,
    out_path: str | Path,
    *,
    checkpoint: str | Path = "default",
    batch_size: int = 256,
    device: str = "cpu",
    unit: str | None = None,
    signal_type: str | None = None,
    readout: str | None = None,
    reference: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Embed the spectra of one bank table and write them with its metadata and targets.

    Parameters
    ----------
    input_csv:
        A table in the bank convention (numeric headers = wavelengths, ``y_*`` = targets,
        anything else = metadata): a ``.csv``/``.tsv``/``.txt`` text file (``,`` ``;`` or tab
        separated) or a ``.parquet`` file; anything else is refused.
    out_path:
        ``*.csv`` or ``*.parquet``: one row per data row of the input, in input order;
        metadata columns, target columns, then the embedding columns (``emb_…``).
    checkpoint:
        ``"default"`` or ``"robust"`` (the shipped models), a checkpoint directory or a run directory.
    batch_size, device:
        Spectra per forward pass, torch device.
    unit, signal_type:
        Declared axis unit (``nm``, ``cm-1``) and signal type (``absorbance``, ``reflectance``,
        ...) of the file; they take precedence over the folder's ``manifest.json``.
    readout:
        How the encoder's output tokens become the embedding, one of
        :data:`vitnirs.model.readout.READOUTS`; ``None``: the checkpoint's (``groups8`` for the
        shipped model).
    reference:
        Standard-free alignment: a table of *unlabelled* spectra of the same instrument (e.g. its
        calibration spectra; its ``y_*`` columns are never read). The embeddings are centred on
        the reference's mean embedding, so embeddings of two instruments, each centred on its own
        reference, can share one head. Same unit and signal type declarations as the input.
    progress:
        Show a progress bar over the batches.

    Returns
    -------
    Path
        ``out_path``. Validation warnings are printed to stderr.
    """
    out = Path(out_path)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise VitnirsError(f"{out}: the output must end in .csv or .parquet")
    frame, notes = embed_table(
        input_csv,
        checkpoint=checkpoint,
        batch_size=batch_size,
        device=device,
        unit=unit,
        signal_type=signal_type,
        readout=readout,
        progress=progress,
    )
    if reference is not None:
        ref, ref_notes = embed_table(
            reference, checkpoint=checkpoint, batch_size=batch_size, device=device, unit=unit,
            signal_type=signal_type, readout=readout, progress=False,
        )  # fmt: skip
        emb = [c for c in frame.columns if str(c).startswith("emb_")]
        centre = ref[emb].to_numpy(dtype=np.float64)
        centre = np.nanmean(centre, axis=0)  # rows without a usable spectrum are NaN: left out
        frame[emb] = (frame[emb].to_numpy(dtype=np.float64) - centre).astype(np.float32)
        notes += [f"reference {n}" for n in ref_notes]
        notes.append(f"embeddings centred on the mean embedding of {reference} ({len(ref)} unlabelled rows)")
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        if out.suffix.lower() == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
