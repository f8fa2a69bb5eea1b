"""Axis units, signal types and spectral regions.

The model reads wavelengths in nm and one kind of signal, absorbance. Reflectance and
transmittance (0-1 or %) are converted with nirs4all's ``ToAbsorbance`` (log10(1/R));
``unknown`` is kept as given. Units and signal types are *declared* by the user; the
guesses here only fill what was not declared, and always come with a warning.
"""

from __future__ import annotations

import warnings as _warnings

import numpy as np

UNITS = ("nm", "cm-1")
SIGNAL_TYPES = (
    "absorbance",
    "reflectance",
    "reflectance%",
    "transmittance",
    "transmittance%",
    "unknown",
)
REGIONS = ("NIR", "vis-NIR", "MIR")
# The wavelengths each region stands for (nm), as :func:`region_of` assigns them: a checkpoint
# pretrained on some regions has seen light in their union only (vitnirs.data.coverage).
REGION_RANGES_NM = {"vis-NIR": (350.0, 2500.0), "NIR": (700.0, 2500.0), "MIR": (2500.0, 25000.0)}

# Spellings users write, mapped to the canonical names above.
_UNIT_ALIASES = {
    "nm": "nm",
    "nanometer": "nm",
    "nanometers": "nm",
    "nanometre": "nm",
    "nanometres": "nm",
    "cm-1": "cm-1",
    "cm^-1": "cm-1",
    "cm⁻¹": "cm-1",
    "1/cm": "cm-1",
    "wavenumber": "cm-1",
    "wavenumbers": "cm-1",
}
_SIGNAL_ALIASES = {
    "a": "absorbance",
    "abs": "absorbance",
    "absorbance": "absorbance",
    "r": "reflectance",
    "reflectance": "reflectance",
    "%r": "reflectance%",
    "r%": "reflectance%",
    "reflectance%": "reflectance%",
    "reflectance_percent": "reflectance%",
    "t": "transmittance",
    "transmittance": "transmittance",
    "%t": "transmittance%",
    "t%": "transmittance%",
    "transmittance%": "transmittance%",
    "transmittance_percent": "transmittance%",
    "unknown": "unknown",
}


def normalize_unit(unit: str) -> str:
    """Canonical axis unit (``nm`` or ``cm-1``); ``ValueError`` naming the allowed values."""
    key = str(unit).strip().lower().replace(" ", "")
    if key not in _UNIT_ALIASES:
        raise ValueError(f"unknown axis unit '{unit}' (allowed: {', '.join(UNITS)})")
    return _UNIT_ALIASES[key]


def normalize_signal_type(signal_type: str) -> str:
    """Canonical signal type; ``ValueError`` naming the allowed values."""
    key = str(signal_type).strip().lower().replace(" ", "")
    if key not in _SIGNAL_ALIASES:
        raise ValueError(f"unknown signal type '{signal_type}' (allowed: {', '.join(SIGNAL_TYPES)})")
    return _SIGNAL_ALIASES[key]


def to_nm(axis: np.ndarray, unit: str) -> np.ndarray:
    """Axis values in ``unit`` → wavelengths in nm (cm⁻¹: 1e7 / ν). Order is kept."""
    axis = np.asarray(axis, dtype=np.float64)
    return axis.copy() if unit == "nm" else 1e7 / axis


def guess_unit(axis: np.ndarray) -> tuple[str, str]:
    """Guess the unit of an undeclared axis. Returns ``(unit, warning)``.

    An axis reaching above 2,600 is taken as cm⁻¹ (NIR instruments stop near 2,500 nm),
    otherwise nm. This misreads MIR files cut to 400-2,000 cm⁻¹, hence the warning.
    """
    hi = float(np.max(axis))
    unit = "cm-1" if hi > 2600 else "nm"
    return unit, (
        f"axis unit not declared: guessed '{unit}' from an axis reaching {hi:g}; "
        "declare it (bank manifest.json, data.declarations or --unit) to be sure"
    )


def guess_signal_type(values: np.ndarray, wavelengths_nm: np.ndarray) -> tuple[str, str]:
    """Guess the signal type with nirs4all's detector. Returns ``(signal_type, warning)``."""
    from nirs4all.data import detect_signal_type

    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        detected = detect_signal_type(values, wavelengths=wavelengths_nm)
    kind, confidence = (detected[0], detected[1]) if isinstance(detected, tuple) else (detected, None)
    name = getattr(kind, "value", str(kind))
    try:
        signal_type = normalize_signal_type(name)
    except ValueError:
        signal_type = "unknown"
    conf = f" ({float(confidence):.0%} confidence)" if isinstance(confidence, (int, float)) else ""
    return signal_type, (
        f"signal type not declared: nirs4all's detector guessed '{signal_type}'{conf}; it often "
        "misreads real data, declare it (manifest.json, data.declarations or --signal-type)"
    )


def to_absorbance(values: np.ndarray, signal_type: str) -> tuple[np.ndarray, str, list[str]]:
    """Convert a (n, L) block to the stored signal.

    Returns ``(values_float64, stored_signal_type, warnings)``: reflectance and
    transmittance become absorbance log10(1/R) through nirs4all's ``ToAbsorbance``
    (non-positive values are clipped, with a warning); absorbance and unknown are kept.
    """
    from nirs4all.operators.transforms import ToAbsorbance

    notes: list[str] = []
    if signal_type in ("absorbance", "unknown"):
        if signal_type == "unknown":
            notes.append("signal type 'unknown': stored as given, not converted to absorbance")
        return np.asarray(values, dtype=np.float64), signal_type, notes
    n_bad = int(np.sum(values <= 0))
    if n_bad:
        notes.append(
            f"{n_bad} non-positive {signal_type} values clipped before log10(1/R) "
            "(they become very large absorbances)"
        )
    if signal_type == "transmittance%" and np.any(values > 100):
        notes.append(f"{int(np.sum(values > 100))} transmittance values above 100 % (negative absorbance)")
    if signal_type == "reflectance%" and np.any(values > 100):
        notes.append(f"{int(np.sum(values > 100))} reflectance values above 100 % (negative absorbance)")
    absorbance = ToAbsorbance(source_type=signal_type).fit(values).transform(values)
    return absorbance, "absorbance", notes


def region_of(wavelengths_nm: np.ndarray) -> str:
    """Spectral region of an axis in nm: ``MIR`` (median beyond 2,500 nm), ``vis-NIR``
    (reaches below 700 nm) or ``NIR``."""
    wl = np.asarray(wavelengths_nm, dtype=np.float64)
    if float(np.median(wl)) > 2500.0:
        return "MIR"
    if float(np.min(wl)) < 700.0:
        return "vis-NIR"
    return "NIR"
